"""CLI sub-commands: each module here exposes `NAME`, `HELP`, `configure(parser)` and `run(args) -> int`."""
