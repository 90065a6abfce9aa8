"""Action files as data: one YAML file per source, validated by these pydantic models.

An action is: a trigger, a target object, one operation (create | update | upsert | delete), record
matchers (`any` = OR, `all` = AND), fields to write with per-field policies, and a delivery mode.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .trigger import TriggerError
from .trigger import parse as parse_trigger


class Operation(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UPSERT = "upsert"
    DELETE = "delete"


class OnManyMatches(StrEnum):
    FAIL = "fail"
    NEWEST = "newest"
    ALL = "all"


class Mode(StrEnum):
    REST = "rest"
    BULK = "bulk"


class Policy(StrEnum):
    ALWAYS = "always"  # write the value, even a blank one (clears the field)
    SKIP_BLANK = "skip_blank"  # write it unless it is blank
    SET_IF_EMPTY = "set_if_empty"  # write it only when the record's field is empty
    MOST_RECENT = "most_recent"  # write it only when the event is newer than the record's last change


class Transform(StrEnum):
    LOWERCASE = "lowercase"
    UPPERCASE = "uppercase"
    TRIM = "trim"
    EMAIL_DOMAIN = "email_domain"
    DOMAIN = "domain"
    TO_DATE = "to_date"
    TO_DATETIME = "to_datetime"
    TO_NUMBER = "to_number"
    TO_BOOL = "to_bool"
    TRUNCATE = "truncate"


class Compare(StrEnum):
    EXACT = "exact"
    DOMAIN = "domain"  # scheme, www., path and case stripped on both sides


_STRICT = ConfigDict(extra="forbid", use_enum_values=False)


class FieldSpec(BaseModel):
    """Where a value comes from (`path`, `value` or `template`), how it is transformed, when it is written."""

    model_config = _STRICT
    path: str | None = Field(None, description="JSON path into the event, e.g. $.traits.email")
    value: Any = Field(None, description="a static value")
    template: str | None = Field(None, description="text with {{ path }} placeholders, e.g. 'Plan: {{ properties.plan }}'")
    default: Any = Field(None, description="used when the source value is missing or blank")
    transform: Transform | list[Transform] | None = None
    truncate: int | None = Field(None, ge=1, description="cut to this many characters (`truncate` alone: the field's length)")
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
        return self

    @property
    def transforms(self) -> list[Transform]:
        if self.transform is None:
            return []
        return [self.transform] if isinstance(self.transform, Transform) else list(self.transform)


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
    required: bool = Field(False, description="fail the event when no parent matches (else leave the field out)")


class Action(BaseModel):
    """One action of a source: when it runs and what it writes."""

    model_config = _STRICT
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    when: str = Field(description='trigger, e.g. type = "identify" and traits.email exists')
    object: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    operation: Operation
    match: MatchGroup | None = None
    on_many_matches: OnManyMatches = OnManyMatches.FAIL
    mode: Mode = Mode.REST
    fields: dict[str, FieldEntry] = Field(default_factory=dict)
    lookups: dict[str, ParentLookup] = Field(default_factory=dict, description="reference field → parent lookup")
    record_type: str | None = Field(None, description="RecordTypeId to set on create (e.g. a Person Account type)")
    retry_without_failing_fields: bool = False
    follow_converted_leads: bool = Field(False, description="updates aimed at a converted Lead go to its Contact")

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
        if self.operation is Operation.DELETE and self.fields:
            raise ValueError("a delete writes no fields")
        return self

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
