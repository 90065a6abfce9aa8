"""A secrets grep over every output of a full run: each kind of secret gets a recognisable random value (write
keys, the operator token, the Salesforce client secret (and a wrong one), an outbound secret, a redacted
trait, the passwords of two broken settings files, and the Salesforce access tokens issued), a real `destination run` is driven through ingest, a failure (so a
dead letter exists), an Outbound Message, the sync-log API and page (with a sign-in), replay, preview,
/metrics and /docs; then `check`, `backfill` and `replay --json` run, and `check` on the broken files. None of
the values appears in any process's stdout or stderr, the log, any HTTP response (status, headers, body),
the sync-log database, or the event-log database — except the redacted trait in the event log, which keeps
the event as received by design (docs/security.md, "What is stored": `redact:` applies to the stored copy
in the sync log and the dead-letter queue; Salesforce, and the event log it is delivered from, get the
value)."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from destination_process import DestinationProcess
from running_emulator import free_port
from settings_support import REPO

ORG = "00D8c0000000001EAA"


def _soap(contact_id: str, email: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{ORG}</OrganizationId><ActionId>04k8c0000000001AAA</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://x.my.salesforce.com/services/Soap/c/62.0</EnterpriseUrl>
   <PartnerUrl>https://x.my.salesforce.com/services/Soap/u/62.0</PartnerUrl>
   <Notification><Id>04l8c000000{secrets.randbelow(10**7):07d}</Id>
    <sObject xsi:type="sf:Contact" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>{contact_id}</sf:Id><sf:Email>{email}</sf:Email></sObject></Notification>
  </notifications></soapenv:Body></soapenv:Envelope>"""


def _secret(kind: str) -> str:
    return f"{kind}-{secrets.token_hex(16)}"


def test_no_secret_appears_in_any_output_of_a_full_run(tls_emulator: Any, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    values = {name: _secret(name) for name in ("writekey", "crmkey", "operator", "sfsecret", "outbound")}
    values["yaml-password"] = _secret("yamlpw")
    values["numeric-password"] = str(10**17 + secrets.randbelow(10**17))
    values["kafka-password"] = _secret("kafkapw")
    redacted = _secret("ssn")
    client = next(c for c in tls_emulator.state.org.clients if c.client_id == "emulator-client")
    client.client_secret = values["sfsecret"]  # the org's connected app now has a random consumer secret
    env = {**os.environ, "WEB_APP_WRITE_KEY": values["writekey"], "CRM_WRITE_KEY": values["crmkey"],
           "OPS_TOKEN": values["operator"], "SF_CLIENT_SECRET": values["sfsecret"],
           "CRM_OUTBOUND_SECRET": values["outbound"]}

    actions = tmp_path / "actions"
    shutil.copytree(REPO / "actions", actions)
    with (actions / "web-app.yaml").open("a") as f:
        f.write("\nredact: [traits.ssn, context.traits.ssn, properties.ssn]\n")
    (actions / "crm.yaml").write_text(f"""source: crm
write_keys: ["${{CRM_WRITE_KEY}}"]
outbound: {{secrets: ["${{CRM_OUTBOUND_SECRET}}"], organization_ids: [{ORG}]}}
actions:
  - name: contact-sync
    when: event = "Salesforce Outbound Message" and properties.sobject_type = "Contact"
    object: Contact
    operation: update
    match: {{any: {{Id: $.properties.Id}}}}
    fields: {{Description: $.properties.Email}}
""")
    data = tmp_path / "data"
    data.mkdir()
    config = tmp_path / "destination.yaml"
    config.write_text(f"""connections:
  default:
    login_url: {tls_emulator.url}
    auth: {{method: client_credentials, client_id: emulator-client, client_secret: "${{SF_CLIENT_SECRET}}"}}
    ca_bundle: {tls_emulator.ca_pem}
    allowed_hosts: [127.0.0.1]
actions_dir: {actions}
sync_log_url: sqlite:///{data / 'sync.db'}
event_log: {{path: {data / 'events.db'}}}
batching: {{linger_ms: 50}}
operator_tokens: [{{name: ops, token_env: OPS_TOKEN, scopes: [admin]}}]
""")
    outputs: list[tuple[str, str]] = []  # (where, text)

    def served(label: str, response: httpx.Response) -> httpx.Response:
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.multi_items())
        outputs.append((f"HTTP {label}", f"{response.status_code}\n{headers}\n{response.text}"))
        return response

    for name, value in env.items():
        monkeypatch.setenv(name, value)  # DestinationProcess inherits the environment
    process = DestinationProcess(config, free_port(), tmp_path / "run.log")
    process.start()
    base = f"http://127.0.0.1:{process.port}"
    bearer = {"Authorization": f"Bearer {values['operator']}"}
    try:
        with httpx.Client(base_url=base, timeout=30) as http:
            key = (values["writekey"], "")
            traits = {"email": "secret-test@x.example", "last_name": "S", "ssn": redacted}
            assert served("identify", http.post("/v1/identify", auth=key, json={
                "userId": "u1", "traits": traits, "writeKey": values["writekey"]})).status_code == 200
            assert served("identify, key in body", http.post("/v1/identify", json={
                "writeKey": values["writekey"], "userId": "u2",
                "traits": {**traits, "email": "two@x.example"}})).status_code == 200
            assert served("failing track", http.post("/v1/track", auth=key, json={
                "userId": "u1", "event": "Order Completed", "traits": traits,
                "properties": {"order_id": "o1", "total": "lots", "ssn": redacted},
                "context": {"traits": {"ssn": redacted}}})).status_code == 200
            assert served("track with the crm key", http.post("/v1/track", auth=(values["crmkey"], ""), json={
                "userId": "c1", "event": "E"})).status_code == 200
            assert served("outbound", http.post(f"/v1/salesforce/outbound/{values['outbound']}",
                                                content=_soap("0038c000000AAAAAAA", "c@x.example"))).status_code == 200
            # credentials used in the wrong place are refused without echoing them
            assert served("token as write key", http.post("/v1/track", auth=(values["operator"], ""),
                                                          json={"userId": "u", "event": "E"})).status_code == 401
            assert served("write key as token", http.get("/v1/sync-log", headers={
                "Authorization": f"Bearer {values['writekey']}"})).status_code == 401
            assert served("wrong outbound secret", http.post(f"/v1/salesforce/outbound/{values['writekey']}",
                                                             content=b"<x/>")).status_code == 401
            for _ in range(300):
                rows = http.get("/v1/sync-log", headers=bearer).json()["rows"]
                if len(rows) >= 5 and any(r["status"] == "failed" for r in rows):
                    break
                time.sleep(0.1)
            rows = served("sync log", http.get("/v1/sync-log", headers=bearer)).json()["rows"]
            assert len(rows) >= 5 and any(r["status"] == "failed" for r in rows), rows
            served("sync log search", http.get("/v1/sync-log", headers=bearer, params={"search": "secret-test"}))
            served("sync log bad filter", http.get("/v1/sync-log", headers=bearer, params={"since": "yesterday"}))
            served("page", http.get("/sync-log", headers=bearer))
            for row in rows:
                served(f"row page {row['id']}", http.get(f"/sync-log/{row['id']}", headers=bearer))
            failed = next(r for r in rows if r["status"] == "failed")
            assert served("replay", http.post(f"/v1/sync-log/{failed['id']}/replay",
                                              headers=bearer)).status_code == 202
            assert served("preview", http.post("/v1/preview", headers=bearer, json={
                "source": "web-app", "outcomes": True, "events": [
                    {"type": "identify", "userId": "u1", "traits": {"email": "secret-test@x.example"}}]})
                          ).status_code == 200
            served("preview, bad", http.post("/v1/preview", headers=bearer, json={"source": "nope", "events": []}))
            assert served("metrics", http.get("/metrics", headers=bearer)).status_code == 200
            served("openapi", http.get("/openapi.json", headers=bearer))
            served("docs", http.get("/docs", headers=bearer))
            served("healthz", http.get("/healthz"))
            served("readyz", http.get("/readyz"))
        with httpx.Client(base_url=base, timeout=30) as browser:  # sign in at /login, read the page by cookie
            # the cookies are Secure (httpx keeps them off plain http): carry them by hand, as a browser on
            # http://localhost would
            form = served("login form", browser.get("/login"))
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf, form.text
            signed_in = served("login", browser.post("/login", data={"token": values["operator"],
                                                                      "csrf": csrf.group(1)}, headers={
                "Cookie": f"destination_login={form.cookies['destination_login']}"}))
            assert signed_in.status_code in (200, 303), signed_in.text
            session = signed_in.cookies["destination_session"]
            assert served("page by cookie", browser.get("/sync-log", headers={
                "Cookie": f"destination_session={session}"})).status_code == 200
        assert process.process is not None and process.process.poll() is None
    finally:
        process.stop()
    outputs.append(("run log (stdout and stderr)", (tmp_path / "run.log").read_text()))

    def command(label: str, *args: str, settings: Path = config) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "destination", "--config", str(settings), *args],
                              capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
        outputs.append((f"{label} stdout", done.stdout))
        outputs.append((f"{label} stderr", done.stderr))
        return done

    assert command("check", "check", "--json").returncode == 0
    events = tmp_path / "input" / "events.ndjson"  # input (holds the secrets on purpose): not an output
    events.parent.mkdir()
    events.write_text("".join(json.dumps({"type": "identify", "userId": f"b{i}", "writeKey": values["writekey"],
                                          "traits": {"email": f"b{i}@x.example", "ssn": redacted}}) + "\n"
                              for i in range(3)))
    backfill = command("backfill", "backfill", str(events), "--source", "web-app", "--json",
                       "--checkpoint", str(data / "events.progress"))
    assert backfill.returncode == 0, backfill.stderr
    assert command("replay", "replay", "--json").returncode in (0, 1)
    assert command("replay dead letters", "replay", "--dead-letters", "--json").returncode in (0, 1)
    wrong = _secret("wrongsecret")  # `check` that cannot authenticate names the problem, not the secret
    values["wrong client secret"] = wrong
    refused = subprocess.run([sys.executable, "-m", "destination", "--config", str(config), "check", "--json"],
                             capture_output=True, text=True, env={**env, "SF_CLIENT_SECRET": wrong}, timeout=300)
    outputs += [("check, wrong secret stdout", refused.stdout), ("check, wrong secret stderr", refused.stderr)]
    assert refused.returncode not in (0, 1, 2), refused.stdout + refused.stderr
    # broken settings carrying passwords: a YAML syntax error on the password's line; a numeric password
    # (not a string) and an inline Kafka SASL password next to a bad value
    broken = tmp_path / "input"
    yaml_error = broken / "yaml-error.yaml"
    yaml_error.write_text(config.read_text().replace('"${SF_CLIENT_SECRET}"',
                                                     f"{values['yaml-password']}: [x"))
    bad = command("config: YAML error", "check", "--offline", "--json", settings=yaml_error)
    assert bad.returncode != 0 and "yaml-error.yaml" in bad.stdout + bad.stderr
    invalid = broken / "invalid.yaml"
    invalid.write_text(config.read_text().replace('"${SF_CLIENT_SECRET}"', values["numeric-password"])
                       + f"kafka: {{security: {{protocol: SASL_SSL, sasl_mechanism: NOPE, sasl_username: u, "
                         f"sasl_password: {values['kafka-password']}}}}}\n")
    bad = command("config: invalid values", "check", "--offline", "--json", settings=invalid)
    assert bad.returncode != 0 and "invalid.yaml" in bad.stdout + bad.stderr and "client_secret" in bad.stdout + bad.stderr

    (tmp_path / "outputs.txt").write_text("".join(f"===== {where}\n{text}\n" for where, text in outputs))  # to read
    stored = {p.name: p.read_bytes().decode("latin-1") for p in sorted(data.iterdir()) if p.is_file()}
    assert any(name.startswith("sync.db") for name in stored) and any(name.startswith("events.db") for name in stored)
    assert redacted in "".join(t for n, t in stored.items() if n.startswith("events.db")), \
        "the event log is expected to keep the event as received (the grep would prove nothing otherwise)"
    # the Salesforce access tokens the emulator issued to the run and the commands are secrets too
    sessions = list(tls_emulator.state.tokens._sessions)
    assert sessions
    values.update({f"Salesforce access token {i}": token for i, token in enumerate(sessions)})
    found = []
    for name, value in [*values.items(), ("redacted trait", redacted)]:
        for where, text in [*outputs, *((f"file {n}", t) for n, t in stored.items())]:
            if name == "redacted trait" and where.startswith("file events.db"):
                continue  # the event log keeps events as received (docs/security.md)
            if value in text:
                found.append((name, where))
    assert not found, found
    assert len(outputs) > 40
