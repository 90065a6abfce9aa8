"""`destination schema`: write the JSON Schemas of action files and settings into schemas/."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..actions.model import ActionFile
from ..config import Settings

NAME = "schema"
HELP = "write JSON Schemas for action files and settings (for editors and CI)"
READS_SETTINGS = False  # writes the schemas even when destination.yaml does not load
SCHEMAS: dict[str, Any] = {"action-file.schema.json": ActionFile, "settings.schema.json": Settings}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="schemas", help="folder to write into (default: schemas/)")


def render() -> dict[str, str]:
    """File name → schema text, deterministic so a drift test can compare it with the committed files."""
    out = {}
    for name, model in SCHEMAS.items():
        schema = model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        out[name] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def run(args: argparse.Namespace) -> int:
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (folder / name).write_text(text)
        print(f"wrote {folder / name}")
    return 0
