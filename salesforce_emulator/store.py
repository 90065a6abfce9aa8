"""The org's records: writes with Salesforce's save rules, unique indexes, transactions, persistence.

Every write returns a WriteResult; a bad record is data (errors), never an exception. Records are kept in
wire format with every field of their object, so query, describe and Bulk read them as they are.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .coercion import from_json, from_text, now_wire
from .derived import apply_derived, new_record
from .errors import SfError
from .faults import Faults
from .ids import IdFactory, is_well_formed, to18
from .org import ObjectDef, Org
from .permissions import insufficient_access
from .persistence import RecordFile
from .record_input import resolve
from .validation import (
    duplicate_rule_error,
    field_access_errors,
    missing_required,
    record_type_errors,
    rule_errors,
    value_errors,
)


@dataclass
class WriteResult:
    """The outcome of one record write."""

    id: str | None
    created: bool = False
    errors: list[SfError] = field(default_factory=list)
    matches: list[str] = field(default_factory=list)  # an upsert key matching several records: their Ids

    @property
    def success(self) -> bool:
        return not self.errors and not self.matches


class Rollback(Exception):
    """Raised inside `Store.transaction()` to undo its writes (allOrNone)."""


def lock_error(record_id: str | None) -> SfError:
    return SfError("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record or 1 records: "
                   f"{record_id or ''}".rstrip())


class Store:
    """All records, by object, with indexes on unique, external-ID and idLookup fields."""

    def __init__(self, org: Org, ids: IdFactory, faults: Faults, db_path: Path | None = None) -> None:
        self.org = org
        self.ids = ids
        self.faults = faults
        self.db_path = db_path
        self._lock = threading.RLock()
        self._tables: dict[str, dict[str, dict[str, Any]]] = {}
        self._index: dict[tuple[str, str], dict[Any, set[str]]] = {}
        self._undo: list[tuple[str, str, dict[str, Any] | None]] | None = None
        self._file = RecordFile(db_path) if db_path else None
        self.default_user_id = org.users[0].id if org.users else "0058c0000000001AAA"
        self._clear()
        if self._file is not None:
            for obj_name, record in self._file.load():
                obj = org.object(obj_name)
                if obj is not None:
                    self._put(obj, record, persist=False)
            newest = self._file.newest_id()
            if newest:
                self.ids.advance_past(newest)

    # ----- reads -----------------------------------------------------------------------------------

    def records(self, obj: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Every record of `obj` (callers must not mutate them)."""
        od = self.org.object(obj)
        if od is None:
            return []
        with self._lock:
            rows = list(self._tables[od.name].values())
        return rows if include_deleted else [r for r in rows if not r["IsDeleted"]]

    def get(self, record_id: str, *, include_deleted: bool = False) -> tuple[ObjectDef, dict[str, Any]] | None:
        """The record with this 15- or 18-character Id, of any object."""
        if not is_well_formed(record_id):
            return None
        rid = to18(record_id)
        obj = self.org.object_for_id(rid)
        if obj is None:
            return None
        record = self._tables[obj.name].get(rid)
        if record is None or (record["IsDeleted"] and not include_deleted):
            return None
        return obj, record

    def find(self, obj: ObjectDef, field_name: str, value: Any) -> list[str]:
        """Ids of live records whose field equals `value`, compared as Salesforce does (through `lookup`)."""
        fd = obj.field(field_name)
        if fd is None:
            return []
        if fd.name == "Id":
            found = self.get(str(value)) if isinstance(value, str) else None
            return [found[1]["Id"]] if found and found[0] is obj else []
        return [r["Id"] for r in self.lookup(obj.name, fd.name, [value])]

    def lookup(self, obj: str, field_name: str, values: list[Any]) -> list[dict[str, Any]]:
        """Live records whose field equals one of `values` (as `find` compares). The field's index is built
        on first use and kept up to date by every write, so repeated lookups (SOQL `IN`) do not scan."""
        od = self.org.object(obj)
        fd = od.field(field_name) if od else None
        if od is None or fd is None:
            return []
        key = (od.name, fd.name)
        with self._lock:
            index = self._index.get(key)
            if index is None:
                index = self._index[key] = {}
                for record in self._tables[od.name].values():
                    if not record["IsDeleted"] and record[fd.name] is not None:
                        index.setdefault(self._key(od, fd.name, record[fd.name]), set()).add(record["Id"])
            ids: set[str] = set()
            for value in values:
                ids.update(index.get(self._key(od, fd.name, value), ()))
            table = self._tables[od.name]
            return [table[i] for i in sorted(ids)]

    # ----- writes ----------------------------------------------------------------------------------

    def insert(self, obj: str, values: dict[str, Any], *, text: bool = False, view: Org | None = None,
               user_id: str | None = None) -> WriteResult:
        """Create a record; `view` is the org as the calling user sees it (permissions.py), None = full access;
        `user_id` is who writes (CreatedById / LastModifiedById), the org's first user when None."""
        od = self._object(obj)
        if isinstance(od, SfError):
            return WriteResult(None, errors=[od])
        seen = self._seen(od, view)
        if isinstance(seen, SfError) or not seen.createable:
            return WriteResult(None, errors=[seen if isinstance(seen, SfError) else insufficient_access()])
        if self.faults.lock_error():
            return WriteResult(None, errors=[lock_error(None)])
        if any(k.lower() == "id" and (not text or v != "") for k, v in values.items()):
            return WriteResult(None, errors=[SfError("INVALID_FIELD", "The Id field should not be specified in "
                                                     "the sobject data.")])
        with self._lock:
            return self._save(od, None, values, text=text, view=view, user_id=user_id)

    def update(self, obj: str, record_id: str, values: dict[str, Any], *, text: bool = False,
               view: Org | None = None, user_id: str | None = None) -> WriteResult:
        """Change fields of an existing record; a null (or `#N/A`) clears a field."""
        od = self._object(obj)
        if isinstance(od, SfError):
            return WriteResult(record_id, errors=[od])
        seen = self._seen(od, view)
        if isinstance(seen, SfError) or not seen.updateable:
            return WriteResult(record_id, errors=[seen if isinstance(seen, SfError) else insufficient_access()])
        with self._lock:
            target = self._target(od, record_id)
            if isinstance(target, SfError):
                return WriteResult(record_id, errors=[target])
            if self.faults.lock_error():
                return WriteResult(target["Id"], errors=[lock_error(target["Id"])])
            values = {k: v for k, v in values.items() if k.lower() != "id"}
            return self._save(od, target, values, text=text, view=view, user_id=user_id)

    def upsert(self, obj: str, ext_field: str, ext_value: Any, values: dict[str, Any], *,
               text: bool = False, view: Org | None = None, user_id: str | None = None) -> WriteResult:
        """Create or update by an external-ID field: 0 matches create, 1 updates, several are reported.
        The user needs create permission when it creates and edit permission when it updates."""
        od = self._object(obj)
        if isinstance(od, SfError):
            return WriteResult(None, errors=[od])
        seen = self._seen(od, view)
        if isinstance(seen, SfError):
            return WriteResult(None, errors=[seen])
        fd = seen.field(ext_field)
        if fd is None or not (fd.external_id or fd.id_lookup):
            return WriteResult(None, errors=[SfError("NOT_FOUND", "Provided external ID field does not exist or "
                                                     f"is not accessible: {ext_field}")])
        if fd.name == "Id":
            if ext_value in (None, ""):
                return self.insert(od.name, values, text=text, view=view, user_id=user_id)
            return self.update(od.name, str(ext_value), values, text=text, view=view, user_id=user_id)
        key, error = from_text(fd, ext_value) if text else from_json(fd, ext_value)
        if error or key in (None, ""):
            return WriteResult(None, errors=[error or SfError("MISSING_ARGUMENT", f"{fd.name} not specified")])
        values = {k: v for k, v in values.items() if k.lower() != fd.name.lower()}
        with self._lock:
            matches = self.find(od, fd.name, key)
            if len(matches) > 1:
                return WriteResult(None, matches=matches)
            if matches:
                if not seen.updateable:
                    return WriteResult(matches[0], errors=[insufficient_access()])
                if self.faults.lock_error():
                    return WriteResult(matches[0], errors=[lock_error(matches[0])])
                return self._save(od, self._tables[od.name][matches[0]], values, text=text, view=view,
                                  user_id=user_id)
            if not seen.createable:
                return WriteResult(None, errors=[insufficient_access()])
            if self.faults.lock_error():
                return WriteResult(None, errors=[lock_error(None)])
            return self._save(od, None, values, text=text, preset={fd.name: key}, view=view, user_id=user_id)

    def delete(self, obj: str | None, record_id: str, *, hard: bool = False, view: Org | None = None,
               user_id: str | None = None) -> WriteResult:
        """Move a record to the recycle bin (IsDeleted), or erase it for good when `hard`."""
        od = self.org.object(obj) if obj else self.org.object_for_id(record_id[:3])
        if od is None:
            return WriteResult(record_id, errors=[SfError("MALFORMED_ID", f"malformed id {record_id}")])
        seen = self._seen(od, view)
        if isinstance(seen, SfError) or not seen.deletable:
            return WriteResult(record_id, errors=[seen if isinstance(seen, SfError) else insufficient_access()])
        with self._lock:
            target = self._target(od, record_id, allow_deleted=hard)
            if isinstance(target, SfError):
                return WriteResult(record_id, errors=[target])
            rid = target["Id"]
            if self.faults.lock_error():
                return WriteResult(rid, errors=[lock_error(rid)])
            self._remember(od, rid)
            self._unindex(od, target)
            if hard:
                del self._tables[od.name][rid]
                if self._file:
                    self._file.remove(rid)
            else:
                # The recycle bin keeps the record; its SystemModstamp is the deletedDate getDeleted reports.
                deleted = dict(target, IsDeleted=True, SystemModstamp=now_wire(),
                               LastModifiedById=user_id or self.default_user_id)
                self._put(od, deleted)
            return WriteResult(rid)

    def convert_lead(self, lead_id: str) -> WriteResult:
        """Convert a Lead: create its Account and Contact and mark it converted (Salesforce's convertLead)."""
        lead_obj = self._object("Lead")
        if isinstance(lead_obj, SfError):
            return WriteResult(lead_id, errors=[lead_obj])
        with self._lock, self.transaction():
            lead = self._target(lead_obj, lead_id)
            if isinstance(lead, SfError):
                return WriteResult(lead_id, errors=[lead])
            account = self.insert("Account", {"Name": lead["Company"] or lead["LastName"]})
            contact = self.insert("Contact", {"FirstName": lead["FirstName"], "LastName": lead["LastName"],
                                              "Email": lead["Email"], "Phone": lead["Phone"],
                                              "Title": lead["Title"], "AccountId": account.id})
            if not (account.success and contact.success):
                raise Rollback
            now = now_wire()
            converted = dict(lead, IsConverted=True, Status="Closed - Converted",
                             ConvertedDate=datetime.now(UTC).date().isoformat(), ConvertedAccountId=account.id,
                             ConvertedContactId=contact.id, LastModifiedDate=now, SystemModstamp=now)
            self._remember(lead_obj, lead["Id"])
            self._put(lead_obj, converted)
            return WriteResult(lead["Id"])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes inside are undone when the block raises (Rollback is swallowed, anything else re-raised)."""
        with self._lock:
            if self._undo is not None:  # nested: the outer transaction owns the undo log
                yield
                return
            self._undo = []
            try:
                yield
            except BaseException as exc:
                for obj_name, rid, previous in reversed(self._undo):
                    od = self.org.objects[obj_name]
                    current = self._tables[obj_name].get(rid)
                    if current is not None:
                        self._unindex(od, current)
                        del self._tables[obj_name][rid]
                        if self._file:
                            self._file.remove(rid)
                    if previous is not None:
                        self._put(od, previous)
                if not isinstance(exc, Rollback):
                    raise
            finally:
                self._undo = None

    def reset(self) -> None:
        """Empty the org (users and record types are re-created)."""
        with self._lock:
            if self._file:
                self._file.clear()
            self._clear()

    def close(self) -> None:
        if self._file:
            self._file.close()

    # ----- internals -------------------------------------------------------------------------------

    def _object(self, name: str) -> ObjectDef | SfError:
        od = self.org.object(name)
        if od is None:
            return SfError("NOT_FOUND", "The requested resource does not exist")
        return od

    def _seen(self, od: ObjectDef, view: Org | None) -> ObjectDef | SfError:
        """The object as the calling user sees it; NOT_FOUND when they cannot see it at all."""
        if view is None:
            return od
        return view.object(od.name) or SfError("NOT_FOUND", "The requested resource does not exist")

    def _target(self, od: ObjectDef, record_id: str, *, allow_deleted: bool = False) -> dict[str, Any] | SfError:
        if not is_well_formed(record_id) or record_id[:3] != od.key_prefix:
            return SfError("MALFORMED_ID", f"{od.label} ID: id value of incorrect type: {record_id}", ("Id",))
        record = self._tables[od.name].get(to18(record_id))
        if record is None:
            return SfError("ENTITY_IS_DELETED" if allow_deleted else "NOT_FOUND",
                           "entity is deleted" if allow_deleted else "The requested resource does not exist")
        if record["IsDeleted"] and not allow_deleted:
            return SfError("ENTITY_IS_DELETED", "entity is deleted")
        return record

    def _save(self, od: ObjectDef, current: dict[str, Any] | None, values: dict[str, Any], *, text: bool,
              preset: dict[str, Any] | None = None, view: Org | None = None,
              user_id: str | None = None) -> WriteResult:
        creating = current is None
        rid = current["Id"] if current else None
        if current is not None and od.name == "Lead" and current.get("IsConverted"):
            return WriteResult(rid, errors=[SfError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")])
        # Names resolve against what the user can see (an invisible field is "No such column"), and access
        # follows their field-level security; the record itself always has every field.
        seen = od if view is None else (view.object(od.name) or od)
        resolved = resolve(view or self.org, seen, values, text=text, lookup=self.find)
        errors = list(resolved.errors)
        given = dict(resolved.values)
        errors += field_access_errors(seen, given, creating=creating)
        if od.record_types and given.get("RecordTypeId", "") is None:
            del given["RecordTypeId"]  # a null RecordTypeId is not given: a create gets the default, an update keeps
        for name, value in given.items():
            errors += value_errors(od.fields[name], value)
            errors += self._reference_errors(od, name, value)
        record_type = None
        if od.record_types:
            record_type, rt_errors = record_type_errors(seen, given, creating=creating,
                                                        current=current.get("RecordTypeId") if current else None)
            errors += rt_errors
        if preset:
            given.update(preset)
        now = now_wire()
        writer = user_id or self.default_user_id
        record = new_record(od, "", writer, now) if creating else dict(current)  # type: ignore[arg-type]
        record.update(given)
        if creating and record_type is not None:
            record["RecordTypeId"] = record_type.id
        if not creating:
            record.update(LastModifiedDate=now, SystemModstamp=now, LastModifiedById=writer)
        if not errors:
            errors += missing_required(od, record, None if creating else given)
            errors += rule_errors(od, record)
        if errors:
            return WriteResult(rid, errors=_first_per_kind(errors))
        record["Id"] = rid or self._new_id(od)
        apply_derived(od, record)
        duplicate = self._unique_error(od, record) or (
            duplicate_rule_error(od, record, self.records(od.name)) if od.duplicate_rules else None)
        if duplicate:
            return WriteResult(rid, errors=[duplicate])
        self._remember(od, record["Id"])
        if current is not None:
            self._unindex(od, current)
        self._put(od, record)
        if creating and od.name == "Account" and record.get("IsPersonAccount"):
            self._create_person_contact(od, record)
        return WriteResult(record["Id"], created=creating)

    def _create_person_contact(self, account_obj: ObjectDef, account: dict[str, Any]) -> None:
        contact_obj = self.org.object("Contact")
        if contact_obj is None:
            return
        now = now_wire()
        contact = new_record(contact_obj, self._new_id(contact_obj), self.default_user_id, now)
        contact.update(FirstName=account.get("FirstName"), LastName=account.get("LastName"),
                       Email=account.get("PersonEmail"), AccountId=account["Id"])
        if "IsPersonAccount" in contact:
            contact["IsPersonAccount"] = True
        apply_derived(contact_obj, contact)
        self._remember(contact_obj, contact["Id"])
        self._put(contact_obj, contact)
        self._put(account_obj, dict(account, PersonContactId=contact["Id"]))

    def _new_id(self, od: ObjectDef) -> str:
        rid = self.ids.new(od.key_prefix)
        if self._file:
            self._file.note_new_id(rid)
        return rid

    def _reference_errors(self, od: ObjectDef, name: str, value: Any) -> list[SfError]:
        fd = od.fields[name]
        if fd.type != "reference" or value is None:
            return []
        if not is_well_formed(value):
            return [SfError("MALFORMED_ID", f"{fd.label}: id value of incorrect type: {value}", (name,))]
        if name == "RecordTypeId" and od.record_types:
            return []  # checked against the object's record types (validation.record_type_errors)
        target = self.get(value)
        if target is None or (fd.reference_to and target[0].name not in fd.reference_to):
            return [SfError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", (name,))]
        return []

    def _unique_error(self, od: ObjectDef, record: dict[str, Any]) -> SfError | None:
        for (obj_name, field_name), index in self._index.items():
            if obj_name != od.name or not od.fields[field_name].unique or record[field_name] is None:
                continue
            others = index.get(self._key(od, field_name, record[field_name]), set()) - {record["Id"]}
            if others:
                return SfError("DUPLICATE_VALUE", f"duplicate value found: {field_name} duplicates value on "
                               f"record with id: {min(others)}", (field_name,))
        return None

    def _key(self, od: ObjectDef, field_name: str, value: Any) -> Any:
        fd = od.fields[field_name]
        if fd.type in ("id", "reference") and isinstance(value, str) and is_well_formed(value):
            return to18(value)
        if isinstance(value, str) and not fd.case_sensitive:
            return value.lower()
        return value

    def _put(self, od: ObjectDef, record: dict[str, Any], *, persist: bool = True) -> None:
        self._tables[od.name][record["Id"]] = record
        if not record["IsDeleted"]:
            for (obj_name, field_name), index in self._index.items():
                if obj_name == od.name and record[field_name] is not None:
                    index.setdefault(self._key(od, field_name, record[field_name]), set()).add(record["Id"])
        if persist and self._file:
            self._file.save(od.name, record)

    def _unindex(self, od: ObjectDef, record: dict[str, Any]) -> None:
        for (obj_name, field_name), index in self._index.items():
            if obj_name == od.name and record[field_name] is not None:
                ids = index.get(self._key(od, field_name, record[field_name]))
                if ids:
                    ids.discard(record["Id"])

    def _remember(self, od: ObjectDef, rid: str) -> None:
        if self._undo is not None:
            previous = self._tables[od.name].get(rid)
            self._undo.append((od.name, rid, dict(previous) if previous else None))

    def _clear(self) -> None:
        self._tables = {name: {} for name in self.org.objects}
        self._index = {(od.name, fd.name): {} for od in self.org.objects.values() for fd in od.fields.values()
                       if fd.name != "Id" and (fd.unique or fd.external_id or fd.id_lookup)}
        self._seed()

    def _seed(self) -> None:
        """Users and record types exist in every org; Owner.Email and RecordTypeId refer to them."""
        now = now_wire()
        user_obj = self.org.object("User")
        if user_obj is not None:
            for user in self.org.users:
                record = new_record(user_obj, user.id, self.default_user_id, now)
                record.update(Username=user.username, Email=user.username, LastName=user.username.split("@")[0],
                              IsActive=True)
                apply_derived(user_obj, record)
                self._put(user_obj, record, persist=False)
        rt_obj = self.org.object("RecordType")
        if rt_obj is not None:
            for od in self.org.objects.values():
                for rt in od.record_types:
                    record = new_record(rt_obj, rt.id, self.default_user_id, now)
                    record.update(Name=rt.name, DeveloperName=rt.developer_name, SobjectType=od.name,
                                  IsPersonType=rt.person)
                    self._put(rt_obj, record, persist=False)


def _first_per_kind(errors: list[SfError]) -> list[SfError]:
    """Salesforce reports each error code once per record; keep the first of each."""
    seen: set[str] = set()
    out = []
    for error in errors:
        if error.code not in seen:
            seen.add(error.code)
            out.append(error)
    return out
