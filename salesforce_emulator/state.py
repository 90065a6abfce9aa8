"""The emulator's runtime state: one org definition plus everything that changes while it runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .auth import TokenStore
from .bulk import BulkJobs
from .faults import Faults
from .ids import IdFactory
from .limits import ApiUsage
from .org import Org, load_org
from .permissions import view_for
from .query import QueryCursors
from .store import Store


@dataclass
class EmulatorState:
    """Shared by every route through `request.app.state.emulator`."""

    org: Org
    ids: IdFactory
    store: Store
    tokens: TokenStore
    usage: ApiUsage
    faults: Faults
    bulk: BulkJobs
    cursors: QueryCursors
    org_path: Path | None = None
    db_path: Path | None = None
    org_loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    _views: dict[str, Org] = field(default_factory=dict, repr=False)

    def org_for(self, user_id: str) -> Org:
        """The org as this user sees it (their profile and permission sets), built once per user."""
        view = self._views.get(user_id)
        if view is None:
            view = self._views[user_id] = view_for(self.org, self.org.user(user_id))
        return view


def build_state(org_path: str | Path | None = None, db_path: str | Path | None = None,
                faults: dict[str, Any] | None = None) -> EmulatorState:
    """Build the state for an org YAML (default org when None), persisted to SQLite when db_path is set."""
    org = load_org(org_path)
    ids = IdFactory()
    fault_cfg = Faults.from_config({**org.faults, **(faults or {})})
    store = Store(org, ids, faults=fault_cfg, db_path=Path(db_path) if db_path else None)
    return EmulatorState(
        org=org,
        ids=ids,
        store=store,
        tokens=TokenStore(org, fault_cfg),
        usage=ApiUsage(org.api_daily_max),
        faults=fault_cfg,
        bulk=BulkJobs(store, ids),
        cursors=QueryCursors(),
        org_path=Path(org_path) if org_path else None,
        db_path=Path(db_path) if db_path else None,
    )
