"""Operator tokens from settings: kept as SHA-256 digests, looked up against every digest; unusable ones
(unset variable, short, unreadable file, equal to a write key) stop the start-up with a message that names
the entry and never the value."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from destination.access import OperatorTokens, Sessions, TokenProblem, ensure_local_token
from destination.actions.loader import load_text
from destination.config import OperatorTokenConfig, Scope, Settings
from destination.service import operator_tokens

TOKEN = "a-long-random-operator-token-0123456789"


def test_tokens_from_a_file_an_environment_variable_or_a_digest_are_kept_only_as_digests(tmp_path: Path) -> None:
    (tmp_path / "t").write_text(TOKEN + "\n")
    other = "another-long-random-operator-token-9876543210"
    digest_only = "third-long-random-operator-token-5555555555"
    tokens = OperatorTokens.from_config([
        OperatorTokenConfig(name="file", token_file=tmp_path / "t", scopes=[Scope.READ]),
        OperatorTokenConfig(name="env", token_env="OPS_TOKEN", scopes=[Scope.REPLAY]),
        OperatorTokenConfig(name="digest", sha256=hashlib.sha256(digest_only.encode()).hexdigest(),
                            scopes=[Scope.ADMIN])], env={"OPS_TOKEN": other})
    assert tokens.identify(TOKEN).name == "file"  # type: ignore[union-attr]
    replay = tokens.identify(other)
    assert replay is not None and replay.may(Scope.READ) and replay.may(Scope.REPLAY) and not replay.may(Scope.ADMIN)
    assert tokens.identify(digest_only).may(Scope.ADMIN)  # type: ignore[union-attr]
    assert tokens.identify(TOKEN[:-1]) is None and tokens.identify("") is None and tokens.identify(None) is None
    held = repr(vars(tokens))
    assert TOKEN not in held and other not in held


@pytest.mark.parametrize("config, env", [
    ({"token_env": "UNSET_OPS_TOKEN"}, {}),
    ({"token_env": "OPS_TOKEN"}, {"OPS_TOKEN": "short-secret-value"}),
    ({"token_file": "/nonexistent/ops-token"}, {}),
])
def test_an_unusable_token_names_its_entry_and_not_its_value(config: dict[str, str], env: dict[str, str]) -> None:
    with pytest.raises(TokenProblem) as err:
        OperatorTokens.from_config([OperatorTokenConfig(name="oncall", **config)], env=env)  # type: ignore[arg-type]
    assert "oncall" in str(err.value) and "short-secret-value" not in str(err.value)


def test_an_operator_token_that_is_also_a_write_key_stops_the_start_up(tmp_path: Path) -> None:
    source = load_text(f"source: web\nwrite_keys: [{TOKEN}]\nactions:\n  - name: a\n    when: type exists\n"
                       "    object: Lead\n    operation: create\n", "web.yaml")
    (tmp_path / "t").write_text(TOKEN)
    settings = Settings(operator_tokens=[OperatorTokenConfig(name="ops", token_file=tmp_path / "t")])
    with pytest.raises(SystemExit) as err:
        operator_tokens(settings, {"web": source})
    assert "web" in str(err.value) and TOKEN not in str(err.value)


def test_a_local_token_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "data" / "operator-token"
    token = ensure_local_token(path)
    assert token is not None and len(token) >= 43 and path.read_text().strip() == token
    assert path.stat().st_mode & 0o777 == 0o600
    assert ensure_local_token(path) is None and path.read_text().strip() == token


def test_a_session_is_signed_and_does_not_survive_a_removed_token() -> None:
    tokens = OperatorTokens.from_config([], extra=[])
    ops = OperatorTokens.from_config([OperatorTokenConfig(name="ops", sha256=hashlib.sha256(TOKEN.encode()).hexdigest())])
    operator = ops.identify(TOKEN)
    assert operator is not None
    sessions = Sessions(ops)
    value = sessions.issue(operator)
    assert TOKEN not in value and sessions.verify(value) is not None
    assert Sessions(tokens, key=sessions._key).verify(value) is None  # the token is gone
    assert Sessions(ops).verify(value) is None  # another process's key (a restart)


def test_the_deployment_shortcut_reads_one_token_file_from_the_environment(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n")
    monkeypatch.setenv("DESTINATION_OPERATOR_TOKEN_FILE", str(tmp_path / "token"))
    tokens = operator_tokens(Settings(), {})
    operator = tokens.identify(TOKEN)
    assert operator is not None and operator.may(Scope.ADMIN)
