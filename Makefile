# Every target that runs something first makes sure .venv exists and holds the project.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-slow bench lint deploy-check constraints emulator clean browser

# Installs with the versions in constraints.txt (the same the container image uses).
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# On first start, makes a local operator token (all scopes) in .destination/operator-token (mode 0600) and
# prints it once; the README's curl lines read it from that file.
run: $(STAMP)
	$(VENV)/bin/destination run --operator-token-file .destination/operator-token

# Debian's chromium for the sync-log page test (root on this machine; elsewhere install it yourself).
browser:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium could not be installed: the sync-log page test will be skipped"; }

test: $(STAMP) browser
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow" --durations=15

test-slow: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -s -m slow tests/slow --durations=15

bench: $(STAMP)
	$(PY) -m bench

lint: $(STAMP)
	$(VENV)/bin/ruff check destination salesforce_emulator tests bench
	$(VENV)/bin/mypy

# deploy/ checked without a container engine: hadolint, docker-compose config, kubernetes-validate.
deploy-check: $(STAMP)
	bash deploy/check.sh

constraints: $(STAMP)
	{ sed -n '1,2p' constraints.txt; $(PY) -m pip freeze --exclude-editable | grep -v '^salesforce-event-destination'; } \
	  > constraints.new && mv constraints.new constraints.txt

emulator: $(STAMP)
	$(PY) -m salesforce_emulator --host 127.0.0.1 --port 8081 --tls-dir .emulator-tls

clean:
	rm -rf $(VENV) .venv-deploy .pytest_cache
