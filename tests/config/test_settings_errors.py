"""Errors in destination.yaml name the file, line and key, and never print a value: a password with YAML
syntax in it, or a numeric one, must not reach the terminal or a log."""

from __future__ import annotations

from pathlib import Path

import pytest

from destination.actions.loader import ConfigError
from destination.cli import main
from destination.config import load_settings

SECRET = "s3cr3t-Pa55"


def _settings(tmp_path: Path, password: str) -> Path:
    path = tmp_path / "destination.yaml"
    path.write_text(f"""connections:
  default:
    login_url: https://login.salesforce.com
    auth:
      method: password
      client_id: abc
      username: u@x.example
      password: {password}
""")
    return path


@pytest.mark.parametrize("password", [f"{SECRET}: x", f"[{SECRET}", f"*{SECRET}", f"!{SECRET} x", f"{SECRET}\"x: y"])
def test_a_password_with_yaml_syntax_is_not_printed_in_the_parse_error(tmp_path: Path, password: str) -> None:
    path = _settings(tmp_path, password)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    text = str(err.value)
    assert SECRET not in text and "3cr3t" not in text, text
    assert f"{path}:8:" in text or f"{path}:9:" in text, text  # the password's line (or the end, for `[`)


def test_a_numeric_password_is_not_printed_in_the_validation_error(tmp_path: Path) -> None:
    path = _settings(tmp_path, "91827364")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    text = str(err.value)
    assert "91827364" not in text
    assert f"{path}:8" in text and "connections.default.auth.password" in text, text


def test_the_command_prints_the_located_error_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _settings(tmp_path, f"{SECRET}: x")
    assert main(["--config", str(path), "run"]) == 2
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err and str(path) in out.err and "password" in out.err


def test_an_action_file_error_does_not_quote_a_substituted_write_key() -> None:
    from destination.actions.loader import load_text

    text = "source: web\nwrite_keys: [${WEB_KEY}]\nactions: []\n"
    with pytest.raises(ConfigError) as err:
        load_text(text, "web.yaml", env={"WEB_KEY": f"*{SECRET}"})
    assert SECRET not in str(err.value) and "web.yaml:2" in str(err.value), str(err.value)


def test_a_settings_file_that_cannot_be_read_is_one_line_and_exit_2(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # A directory stands in for a file the service user may not read (tests run as root, where chmod 000 reads).
    path = tmp_path / "destination.yaml"
    path.mkdir()
    assert main(["--config", str(path), "run"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert str(path) in err and "cannot be read" in err, err


def test_an_action_file_that_cannot_be_read_is_a_located_problem(tmp_path: Path) -> None:
    from destination.actions.loader import load_sources

    (tmp_path / "web.yaml").mkdir()
    with pytest.raises(ConfigError) as err:
        load_sources(tmp_path)
    assert f"{tmp_path / 'web.yaml'}" in str(err.value) and "cannot be read" in str(err.value), str(err.value)
