"""The committed JSON Schemas match the models, and every action file points editors at its schema."""

from __future__ import annotations

from pathlib import Path

from destination.commands.schema import render

REPO = Path(__file__).resolve().parents[2]


def test_committed_schemas_match_the_models() -> None:
    for name, text in render().items():
        committed = REPO / "schemas" / name
        assert committed.exists(), f"run `destination schema`: {name} is missing"
        assert committed.read_text() == text, f"schemas/{name} drifted from the models: run `destination schema`"


def test_action_files_carry_the_yaml_language_server_line() -> None:
    for path in (REPO / "actions").glob("*.yaml"):
        assert path.read_text().startswith("# yaml-language-server: $schema=../schemas/action-file.schema.json")
