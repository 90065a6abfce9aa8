"""Run the emulator: python -m salesforce_emulator --host 127.0.0.1 --port 8081 [--org org.yaml] [--tls-dir DIR]."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import uvicorn
import yaml

from .app import create_app
from .faults import Faults
from .state import build_state
from .tls import ensure_certificates


def main(argv: list[str] | None = None) -> None:
    """Parse the options, build the org state and serve it with uvicorn until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m salesforce_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--org", default=None, help="org YAML (default: the shipped default org)")
    parser.add_argument("--db", default=None, help="SQLite file that keeps the org's records across restarts")
    parser.add_argument("--tls-dir", default=None,
                        help="serve HTTPS with a local CA kept in DIR (clients trust DIR/ca.pem)")
    parser.add_argument("--faults", default=None, help="YAML or JSON file of fault settings")
    args = parser.parse_args(argv)
    faults = None
    if args.faults:
        text = Path(args.faults).read_text()
        faults = (json.loads(text) if args.faults.endswith(".json") else yaml.safe_load(text)) or {}
        if not isinstance(faults, dict):
            parser.error(f"--faults {args.faults}: expected a mapping of fault settings")
        try:
            Faults.from_config(faults)
        except ValueError as exc:  # every bad setting, named by Faults.update
            parser.error(f"--faults {args.faults}: {exc}")
    state = build_state(args.org, args.db, faults)
    ssl: dict[str, str] = {}
    if args.tls_dir:
        paths = ensure_certificates(args.tls_dir)
        ssl = {"ssl_certfile": str(paths.cert_pem), "ssl_keyfile": str(paths.key_pem)}
        print(f"emulator CA: {paths.ca_pem}")
    uvicorn.run(create_app(state), host=args.host, port=args.port, log_level="info", **ssl)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
