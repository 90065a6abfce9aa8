"""Action files as data: one YAML file per source, validated by these pydantic models.

An action is: a trigger, a target object, one operation (create | update | upsert | delete), record
matchers (`any` = OR, `all` = AND), fields to write with per-field policies, and a delivery mode.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..kinds import (
    Compare,
    Direction,
    Mode,
    OnDuplicate,
    OnManyMatches,
    OnMissing,
    Operation,
    Policy,
    Transform,
)
from .sync_back_model import SyncBack, SyncField
from .trigger import TriggerError
from .trigger import parse as parse_trigger

__all__ = ["Action", "ActionFile", "Compare", "FieldEntry", "FieldSpec", "MatchGroup", "Mode", "OnDuplicate", "OnManyMatches",
           "OnMissing", "Operation", "ParentLookup", "Policy", "Transform", "spec_of"]

_STRICT = ConfigDict(extra="forbid", use_enum_values=False)


class ReplaceArgs(BaseModel):
    model_config = _STRICT
    pattern: str = Field(description="a Python regular expression")
    replacement: str = Field("", description="replacement text; \\1 or \\g<name> refer to groups")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"replace pattern {value!r} is not a regular expression: {exc}") from None
        return value


class SplitArgs(BaseModel):
    model_config = _STRICT
    separator: str = Field(",", min_length=1)
    index: int | None = Field(None, description="keep only this part (0 = first, -1 = last) instead of a list")


class JoinArgs(BaseModel):
    model_config = _STRICT
    separator: str = ";"


class TransformCall(BaseModel):
    """A transform with arguments: `{replace: {pattern, replacement}}`, `{split: {separator, index}}`,
    `{join: {separator}}` or `{coalesce: [fallbacks...]}` (paths `$.x` or static values)."""

    model_config = _STRICT
    replace: ReplaceArgs | None = None
    split: SplitArgs | None = None
    join: JoinArgs | None = None
    coalesce: list[Any] | None = Field(None, description="when the value is blank: the first non-blank of these")

    @model_validator(mode="after")
    def _exactly_one(self) -> TransformCall:
        given = [k for k in ("replace", "split", "join", "coalesce") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a transform with arguments names exactly one of replace, split, join, coalesce")
        return self

    @property
    def name(self) -> str:
        return next(k for k in ("replace", "split", "join", "coalesce") if getattr(self, k) is not None)


TransformStep = Transform | TransformCall


class FieldSpec(BaseModel):
    """Where a value comes from (`path`, `value` or `template`), how it is transformed, when it is written."""

    model_config = _STRICT
    path: str | list[str] | None = Field(None, description="JSON path into the event, e.g. $.traits.email; a list "
                                         "is tried in order and the first non-blank value wins")
    value: Any = Field(None, description="a static value")
    template: str | None = Field(None, description="text with {{ path }} placeholders, e.g. 'Plan: {{ properties.plan }}'")
    default: Any = Field(None, description="a static value or a {{ template }}, used when the source value is missing "
                         "or blank; it fills a create or an empty field and never replaces a non-blank value "
                         "(unless policy: always)")
    on_missing: OnMissing = Field(OnMissing.BLANK, description="a template placeholder without a value: blank "
                                  "(all missing = nothing written) or error (the event fails)")
    transform: TransformStep | list[TransformStep] | None = None
    truncate: Annotated[int, Field(ge=1)] | bool | None = Field(
        None, description="a number: cut to this many characters. Text longer than its Salesforce field is cut to "
        "the field's length by default (with a warning on the outcome); false: never cut, let Salesforce refuse it")
    policy: Policy = Policy.SKIP_BLANK
    required: bool = Field(False, description="a missing value fails the event instead of leaving the field out")
    compare: Compare = Field(Compare.EXACT, description="for matchers: exact, or domain")

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        sources = [s for s in (self.path, self.template) if s is not None] + ([1] if self.value is not None else [])
        if len(sources) > 1:
            raise ValueError("give one of path, value, template")
        if not sources and self.default is None:
            raise ValueError("give one of path, value, template (or a default)")
        if isinstance(self.path, list) and not self.path:
            raise ValueError("a list of paths needs at least one path")
        if self.on_missing is OnMissing.ERROR and self.template is None and not _is_template(self.default):
            raise ValueError("on_missing applies to a template (template: or a default with {{ placeholders }})")
        pending_list = False
        for step in self.transforms:
            name = step.name if isinstance(step, TransformCall) else step.value
            if name == "split":
                pending_list = not (isinstance(step, TransformCall) and step.split and step.split.index is not None)
            elif name in ("join", "coalesce"):
                pending_list = False
        if pending_list:
            raise ValueError("split makes a list, which no field can hold: follow it with join or coalesce, "
                             "or give split an index")
        return self

    @property
    def cut_at(self) -> int | None:
        """The explicit length to cut text to (`truncate: N`), if any."""
        return None if isinstance(self.truncate, bool) else self.truncate

    @property
    def paths(self) -> list[str]:
        """The source paths, in fallback order (empty when the value is not read from a path)."""
        if self.path is None:
            return []
        return [self.path] if isinstance(self.path, str) else list(self.path)

    @property
    def transforms(self) -> list[TransformStep]:
        if self.transform is None:
            return []
        return [self.transform] if isinstance(self.transform, (Transform, TransformCall)) else list(self.transform)


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def spec_of(raw: Any) -> FieldSpec:
    """A field entry as a FieldSpec: a string starting with `$.` is a path, `{{` a template, else a value."""
    if isinstance(raw, FieldSpec):
        return raw
    if isinstance(raw, str):
        if raw.startswith("$."):
            return FieldSpec(path=raw)
        if "{{" in raw:
            return FieldSpec(template=raw)
    if isinstance(raw, dict):
        return FieldSpec.model_validate(raw)
    return FieldSpec(value=raw)


FieldEntry = str | int | float | bool | FieldSpec


class MatchGroup(BaseModel):
    """`any` (OR) or `all` (AND) of field matchers — `{Field: source}` — and nested groups."""

    model_config = _STRICT
    any: dict[str, FieldEntry] | list[MatchGroup | dict[str, FieldEntry]] | None = None
    all: dict[str, FieldEntry] | list[MatchGroup | dict[str, FieldEntry]] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> MatchGroup:
        if (self.any is None) == (self.all is None):
            raise ValueError("a matcher has exactly one of `any` or `all`")
        return self

    @property
    def kind(self) -> str:
        return "any" if self.any is not None else "all"

    def members(self) -> list[tuple[str, FieldSpec] | MatchGroup]:
        """Field matchers as (field, spec) and nested groups, in order (computed once per model)."""
        cached = self.__dict__.get("_members")
        if cached is None:
            cached = self.__dict__["_members"] = self._members()
        return cached

    def _members(self) -> list[tuple[str, FieldSpec] | MatchGroup]:
        raw = self.any if self.any is not None else self.all
        items: list[tuple[str, FieldSpec] | MatchGroup] = []
        entries = [raw] if isinstance(raw, dict) else list(raw or [])
        for entry in entries:
            if isinstance(entry, MatchGroup):
                items.append(entry)
            elif isinstance(entry, dict) and set(entry) <= {"any", "all"} and entry:
                items.append(MatchGroup.model_validate(entry))
            else:
                items.extend((name, spec_of(value)) for name, value in entry.items())
        return items

    def fields(self) -> list[tuple[str, FieldSpec]]:
        """Every field matcher, nested ones included."""
        out: list[tuple[str, FieldSpec]] = []
        for member in self.members():
            out.extend(member.fields() if isinstance(member, MatchGroup) else [member])
        return out


class ParentLookup(BaseModel):
    """Set a reference field (e.g. Contact.AccountId) to the Id of a parent matched like a record."""

    model_config = _STRICT
    object: str
    match: MatchGroup
    on_many_matches: OnManyMatches = OnManyMatches.NEWEST
    required: bool = Field(False, description="fail the event when no parent matches (else the field is left out, with a warning on the outcome)")


class FieldsFrom(BaseModel):
    """Every key of an event object as a field (Segment's `customFields: $.properties`): keys are renamed by
    `rename`, kept only when in `allow` (if given) and not in `deny`; keys the object does not have are
    dropped with a warning on the outcome. Explicit `fields` win over spread ones."""

    model_config = _STRICT
    path: str = Field(description="JSON path of an object in the event, e.g. $.properties")
    rename: dict[str, str] = Field(default_factory=dict, description="event key → Salesforce field name")
    allow: list[str] | None = Field(None, description="only these keys (event key or field name)")
    deny: list[str] = Field(default_factory=list, description="never these keys (event key or field name)")
    policy: Policy = Policy.SKIP_BLANK

    def keep(self, key: str, name: str) -> bool:
        """Whether event key `key` (field `name` after renaming) is spread (case-insensitive)."""
        names = {key.lower(), name.lower()}
        if self.allow is not None and not names & {a.lower() for a in self.allow}:
            return False
        return not names & {d.lower() for d in self.deny}


class Action(BaseModel):
    """One action of a source: when it runs and what it writes."""

    model_config = _STRICT
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    when: str = Field(description='trigger, e.g. type = "identify" and traits.email exists')
    object: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    operation: Operation
    match: MatchGroup | None = None
    on_many_matches: OnManyMatches = OnManyMatches.FAIL
    on_duplicate: OnDuplicate = Field(OnDuplicate.FAIL, description="when the org's duplicate rules block a create "
                                      "(DUPLICATES_DETECTED): fail the event, or update_existing to update the "
                                      "record Salesforce matched (create and upsert; rest mode)")
    mode: Mode = Mode.REST
    fields: dict[str, FieldEntry] = Field(default_factory=dict)
    fields_from: str | FieldsFrom | list[str | FieldsFrom] | None = Field(
        None, description="spread event objects into fields: `$.properties`, or {path, rename, allow, deny, policy}; "
        "a list for several")
    lookups: dict[str, ParentLookup] = Field(default_factory=dict, description="reference field → parent lookup")
    record_type: str | None = Field(None, description="RecordTypeId to set on create (e.g. a Person Account type)")
    retry_without_failing_fields: bool = False
    follow_converted_leads: bool = Field(False, description="updates aimed at a converted Lead go to its Contact")
    idempotency_field: str | None = Field(
        None, pattern=r"^[A-Za-z][A-Za-z0-9_]*$",
        description="create only: a text field (ideally an external ID) that receives `source:action:messageId`, "
                    "so a create whose fate is unknown (timeout, crash) is looked up by it instead of being "
                    "sent twice, e.g. Event_Id__c")

    @field_validator("when")
    @classmethod
    def _trigger_parses(cls, value: str) -> str:
        try:
            parse_trigger(value)
        except TriggerError as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _operation_needs(self) -> Action:
        if self.operation is not Operation.CREATE and self.match is None:
            raise ValueError(f"operation {self.operation.value} needs `match`")
        if self.operation is Operation.DELETE and (self.fields or self.fields_from):
            raise ValueError("a delete writes no fields")
        if self.on_duplicate is OnDuplicate.UPDATE_EXISTING and self.operation not in (Operation.CREATE,
                                                                                       Operation.UPSERT):
            raise ValueError("on_duplicate: update_existing applies to create and upsert")
        if self.idempotency_field and self.operation is not Operation.CREATE:
            raise ValueError("idempotency_field is for creates (other operations find their record by `match`)")
        return self

    def spreads(self) -> list[FieldsFrom]:
        """`fields_from` as a list of FieldsFrom (a bare path is `{path: ...}`); computed once per model."""
        cached = self.__dict__.get("_spreads")
        if cached is None:
            raw = self.fields_from
            items = [] if raw is None else raw if isinstance(raw, list) else [raw]
            cached = self.__dict__["_spreads"] = [FieldsFrom(path=i) if isinstance(i, str) else i for i in items]
        return cached

    def field_specs(self) -> dict[str, FieldSpec]:
        """Every field entry as a FieldSpec (computed once per model: mapping calls this per event)."""
        cached = self.__dict__.get("_specs")
        if cached is None:
            cached = self.__dict__["_specs"] = {name: spec_of(raw) for name, raw in self.fields.items()}
        return cached


MIN_OUTBOUND_SECRET_CHARS = 24
_STORED_PATH = r"^(\$\.)?[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$"


class OutboundConfig(BaseModel):
    """Salesforce Outbound Messages for this source: the secret in the endpoint URL Salesforce calls
    (`/v1/salesforce/outbound/<secret>`; Salesforce cannot send headers) and the orgs allowed to send."""

    model_config = _STRICT
    secrets: list[str] = Field(min_length=1, description="URL secrets (use ${VAR}; two during a rotation)")
    organization_ids: list[str] = Field(min_length=1, description="18-character Ids of the orgs that may send")

    @field_validator("secrets")
    @classmethod
    def _long_enough(cls, value: list[str]) -> list[str]:
        if any(len(s) < MIN_OUTBOUND_SECRET_CHARS for s in value):
            raise ValueError(f"an outbound secret has at least {MIN_OUTBOUND_SECRET_CHARS} characters (unset variable?)")
        return value

    @field_validator("organization_ids")
    @classmethod
    def _org_ids(cls, value: list[str]) -> list[str]:
        for org in value:
            if len(org) != 18 or not org.startswith("00D") or not org.isalnum():
                raise ValueError("organization_ids are 18-character org Ids starting with 00D")
        return value


class ActionFile(BaseModel):
    """One source: its write keys and its actions, in order."""

    model_config = ConfigDict(extra="forbid")
    source: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    write_keys: list[str] = Field(default_factory=list, description="Segment write keys of this source (use ${VAR})")
    connection: str = "default"
    outbound: OutboundConfig | None = Field(None, description="accept Salesforce Outbound Messages for this source")
    redact: list[str] = Field(default_factory=list, description="event paths (e.g. traits.phone) replaced by "
                              "\"[redacted]\" in the stored copy (sync log, dead letters); Salesforce gets the value")
    hash: list[str] = Field(default_factory=list, description="event paths replaced by their SHA-256 (hex) in the "
                            "stored copy; Salesforce gets the value")
    actions: list[Action]
    sync_back: SyncBack | None = Field(None, description="publish Salesforce's changes to these objects as events, "
                                       "with per-field direction shared with the actions")

    @field_validator("redact", "hash")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        for path in value:
            if not re.match(_STORED_PATH, path):
                raise ValueError("a redact/hash entry is a dotted event path such as traits.email")
        return [p.removeprefix("$.") for p in value]

    @model_validator(mode="after")
    def _unique_names(self) -> ActionFile:
        names = [a.name for a in self.actions]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"action names must be unique in a source: {dupes}")
        if self.outbound and set(self.outbound.secrets) & set(self.write_keys):
            raise ValueError("an outbound secret must not be one of the source's write keys (those may be public)")
        return self

    def owned_by_salesforce(self) -> list[tuple[int, str]]:
        """(action index, field) of every action field that sync_back says Salesforce owns (from_salesforce):
        the push direction never writes those, so naming one is a configuration error."""
        out = []
        for index, action in enumerate(self.actions):
            rules = self.rules_for(action.object)
            out += [(index, name) for name in action.fields if (r := rules.get(name.lower())) is not None
                    and r.direction is Direction.FROM_SALESFORCE]
        return out

    def rules_for(self, obj: str) -> dict[str, SyncField]:
        """Per-field direction rules for an object (lower-case field name → rule); empty without sync_back."""
        return self.sync_back.rules_for(obj) if self.sync_back else {}
