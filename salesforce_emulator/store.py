"""Records of the org (filled in by the store work)."""

from __future__ import annotations

from pathlib import Path

from .faults import Faults
from .ids import IdFactory
from .org import Org


class Store:
    """All records, by object."""

    def __init__(self, org: Org, ids: IdFactory, faults: Faults, db_path: Path | None = None) -> None:
        self.org = org
        self.ids = ids
        self.faults = faults
        self.db_path = db_path
