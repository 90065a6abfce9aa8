"""The `sync_back:` block of an action file (Salesforce → app): which objects are polled, how their fields
flow, where changes are published. ActionFile (model.py) holds one."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..kinds import Direction, Merge

_STRICT = ConfigDict(extra="forbid", use_enum_values=False)
_NAME = r"^[A-Za-z][A-Za-z0-9_]*$"
OVERLAP_SECONDS = 60.0  # the defaults of overlap_seconds and settle_seconds (the Outbound Message path uses them)
SETTLE_SECONDS = 600.0


class SyncField(BaseModel):
    """One field of a synced object: its name in published events and which way it flows."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    name: str | None = Field(None, alias="as", description="its name in published events (default: the field name)")
    direction: Direction = Direction.BOTH
    merge: Merge = Field(Merge.MOST_RECENT, description="direction both: who wins when both sides change it")
    unless_blank: bool = Field(True, description="a blank value is neither pushed nor published")


class SyncObject(BaseModel):
    """A Salesforce object whose changes are published (identify for Lead/Contact, group for Account, else
    track "<Object> Updated"; deletes are track "<Object> Deleted")."""

    model_config = _STRICT
    object: str = Field(pattern=_NAME)
    event: str | None = Field(None, pattern=r"^(identify|group|track)$",
                              description="identify | group | track (default by object)")
    id_field: str = Field("Id", pattern=_NAME, description="the field whose value is the event's userId / groupId")
    fields: dict[str, str | SyncField] = Field(min_length=1, description="Salesforce field → its event name "
                                               "(a string), or {as, direction, merge, unless_blank}")

    def rules(self) -> dict[str, SyncField]:
        """Every field as a SyncField (a plain string is a rename), keyed by the Salesforce field name."""
        return {name: SyncField(name=raw) if isinstance(raw, str) else raw for name, raw in self.fields.items()}


class HttpPublish(BaseModel):
    """A Segment-compatible HTTP endpoint (the batch API) that receives published changes."""

    model_config = _STRICT
    url: str = Field(pattern=r"^https?://", description="e.g. https://api.segment.io/v1/batch")
    write_key: str = Field(min_length=1, description="sent as Basic auth user (use ${VAR})")


class SyncBack(BaseModel):
    """Salesforce → app: poll the org for changes to these objects and publish them as events."""

    model_config = _STRICT
    objects: list[SyncObject] = Field(min_length=1)
    kafka_topic: str | None = Field(None, description="publish to this Kafka topic (the settings' brokers)")
    http: HttpPublish | None = None
    interval_seconds: float = Field(30.0, gt=0, description="how often each object is polled")
    overlap_seconds: float = Field(OVERLAP_SECONDS, ge=0, description="each poll re-reads this much before the watermark, "
                                   "so a change committed late is not missed; repeats are dropped by "
                                   "(Id, SystemModstamp)")
    settle_seconds: float = Field(SETTLE_SECONDS, gt=0, description="the longest a change that may be our own write "
                                  "still being recorded is held back (a delivery that died mid-write leaves "
                                  "its note; after this, the change is judged on what the sync log holds)")
    start: str = Field("now", pattern=r"^(now|backfill)$", description="first run: now (only later changes) or "
                       "backfill (every record)")
    integration_user_id: str | None = Field(None, description="the user our writes are made as (default: the "
                                            "connection's user, from its token)")

    @model_validator(mode="after")
    def _somewhere(self) -> SyncBack:
        if self.kafka_topic is None and self.http is None:
            raise ValueError("sync_back needs kafka_topic or http (where changes are published)")
        names = [o.object.lower() for o in self.objects]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"an object is synced back once per source: {dupes}")
        return self

    def rules_for(self, obj: str) -> dict[str, SyncField]:
        """The field rules of an object (case-insensitive), empty when it is not synced back."""
        found = next((o for o in self.objects if o.object.lower() == obj.lower()), None)
        return {name.lower(): rule for name, rule in found.rules().items()} if found else {}
