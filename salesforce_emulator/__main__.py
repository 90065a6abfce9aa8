"""Run the emulator: python -m salesforce_emulator --host 127.0.0.1 --port 8081 [--org org.yaml] [--tls-dir DIR]."""

from __future__ import annotations

import argparse

import uvicorn

from .app import create_app
from .state import build_state


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m salesforce_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--org", default=None, help="org YAML (default: the shipped default org)")
    parser.add_argument("--db", default=None, help="SQLite file that keeps the org's records across restarts")
    args = parser.parse_args(argv)
    state = build_state(args.org, args.db)
    uvicorn.run(create_app(state), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
