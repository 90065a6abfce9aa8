"""What mapping produces and planning consumes: record operations with their matchers and field values."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .actions.values import domain_of
from .events import Event
from .kinds import Compare, Mode, OnDuplicate, OnManyMatches, Operation, Policy

#: (object, field, value) in lower case: what a parent record holds and a child's lookup finds it by.
RecordFact = tuple[str, str, str]
RecordKey = tuple[tuple[str, str], ...]
_UNSET: Any = object()  # a cache slot not filled yet (None is a value: a create has no record key)


@dataclass(frozen=True, slots=True)
class Matcher:
    """One field condition: `field` equals `value` (exactly, or by normalised domain)."""

    field: str
    value: Any
    compare: Compare = Compare.EXACT


@dataclass(frozen=True, slots=True)
class MatchTree:
    """`any` (OR) or `all` (AND) of matchers and nested trees."""

    kind: str
    items: tuple[Matcher | MatchTree, ...]
    # computed once: every step of the data path asks (batching, planning, intents, lookups)
    _flat: tuple[Matcher, ...] | None = field(default=None, init=False, repr=False, compare=False)
    _shape: str | None = field(default=None, init=False, repr=False, compare=False)

    def matchers(self) -> tuple[Matcher, ...]:
        """Every matcher of the tree, nested ones included, in order."""
        if self._flat is None:
            out: list[Matcher] = []
            for item in self.items:
                out.extend(item.matchers() if isinstance(item, MatchTree) else (item,))
            object.__setattr__(self, "_flat", tuple(out))
        return self._flat  # type: ignore[return-value]

    def shape(self) -> str:
        """The structure without values: operations of one shape share a lookup query."""
        if self._shape is None:
            parts = [i.shape() if isinstance(i, MatchTree) else f"{i.field}:{i.compare.value}" for i in self.items]
            object.__setattr__(self, "_shape", f"{self.kind}({','.join(parts)})")
        return self._shape  # type: ignore[return-value]

    def single(self) -> Matcher | None:
        """The only matcher, when the tree is exactly one exact-compare field."""
        found = self.matchers()
        return found[0] if len(found) == 1 and found[0].compare is Compare.EXACT else None


@dataclass(frozen=True, slots=True)
class FieldValue:
    value: Any
    policy: Policy = Policy.SKIP_BLANK
    from_default: bool = False  # the field's default: written on create or over a blank, never over a value
    spread: bool = False  # from `fields_from`: dropped with a warning when the object has no such field
    truncate: bool = True  # text longer than the field is cut to its length (False: `truncate: false`)


@dataclass(frozen=True, slots=True)
class Lookup:
    """A reference field filled from a parent record found by its own matchers."""

    field: str
    object: str
    match: MatchTree
    on_many_matches: OnManyMatches = OnManyMatches.NEWEST
    required: bool = False

    def needs(self) -> set[RecordFact]:
        """The field values a parent must hold for this lookup to find it (any one of them may do: an `all`
        lookup is over-approximated, which only orders writes more than needed)."""
        obj = self.object.lower()
        return {(obj, m.field.lower(), _domain_fact(m.value) if m.compare is Compare.DOMAIN else _fact(m.value))
                for m in self.match.matchers()}


@dataclass(slots=True)  # not frozen: one is built per event and action (see Outcome)
class RecordOp:
    """One event's intended write to one object."""

    event: Event
    action: str
    object: str
    operation: Operation
    match: MatchTree | None
    fields: dict[str, FieldValue] = field(default_factory=dict)
    lookups: tuple[Lookup, ...] = ()
    on_many_matches: OnManyMatches = OnManyMatches.FAIL
    mode: Mode = Mode.REST
    connection: str = "default"
    retry_without_failing_fields: bool = False
    follow_converted_leads: bool = False
    on_duplicate: OnDuplicate = OnDuplicate.FAIL
    # for its outcome: from mapping and fitting to describe, and a lookup that found no parent
    warnings: tuple[str, ...] = ()
    # record_key, its JSON text and batch_key, computed once (batcher, planner, writer and intents all ask);
    # not init fields, so dataclasses.replace starts a copy without them
    _key: RecordKey | None = field(default=_UNSET, init=False, repr=False, compare=False)
    _intent: str | None = field(default=_UNSET, init=False, repr=False, compare=False)
    _batch: tuple[str, str, str, str, str] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def source(self) -> str:
        return self.event.source

    def record_key(self) -> RecordKey | None:
        """The record this op is aimed at, as far as its matcher values tell (field and value, case- and
        space-insensitive); ops with one key land on one record. None for creates: each is a record."""
        key = self._key
        if key is _UNSET:
            if self.match is None or self.operation is Operation.CREATE:
                key = None
            else:
                found = self.match.matchers()
                key = (_key_pair(found[0]),) if len(found) == 1 else tuple(sorted(map(_key_pair, found)))
            self._key = key
        return key

    def intent_key(self) -> str | None:
        """The record key an upsert's create intent is kept under: record_key as JSON text, the form the sync
        log keeps (so it must not change); None for ops that are not upserts or have no matchers."""
        text = self._intent
        if text is _UNSET:
            key = self.record_key() if self.operation is Operation.UPSERT else None
            text = self._intent = json.dumps(key) if key else None
        return text

    def batch_key(self) -> tuple[str, str, str, str, str]:
        """Operations with the same key are written together (connection, object, operation, shape, mode)."""
        if self._batch is None:
            shape = self.match.shape() if self.match else "-"
            self._batch = (self.connection, self.object.lower(), self.operation.value, shape, self.mode.value)
        return self._batch

    def holds(self, domains: bool = True) -> set[RecordFact]:
        """The field values its record holds once written (matcher values and written fields; strings also
        as domains, unless `domains` is false): what a child's lookup may find it by. Nothing for a delete."""
        if self.operation is Operation.DELETE:
            return set()
        obj = self.object.lower()
        pairs = [(m.field, m.value) for m in self.match.matchers()] if self.match is not None else []
        pairs += [(name, fv.value) for name, fv in self.fields.items() if fv.value is not None]
        out: set[RecordFact] = set()
        for name, value in pairs:
            out.add((obj, name.lower(), _fact(value)))
            if domains and isinstance(value, str):
                out.add((obj, name.lower(), _domain_fact(value)))
        return out


def _key_pair(m: Matcher) -> tuple[str, str]:
    value = m.value
    return m.field.lower(), value.strip().lower() if isinstance(value, str) else str(value)


def _fact(value: Any) -> str:
    return str(value).strip().lower()


DOMAIN_FACT = "domain:"


def _domain_fact(value: Any) -> str:
    return DOMAIN_FACT + domain_of(str(value))
