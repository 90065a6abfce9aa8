"""Routes: sObject Collections create / update / upsert / delete (REST §4), one API call for ≤200 records."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..errors import SfError, SfException
from ..ids import is_well_formed, to18
from ..org import Org
from ..store import Rollback, Store, WriteResult
from .deps import CallerOrg, CurrentSession, State
from .records import json_body, known_object

router = APIRouter()

MAX_RECORDS = 200
ROLLED_BACK = SfError("ALL_OR_NONE_OPERATION_ROLLED_BACK",
                      "Record rolled back because not all records were valid and the request was using "
                      "AllOrNone header")


def _payload(body: Any) -> tuple[list[Any], bool]:
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise SfException(400, SfError("JSON_PARSER_ERROR", "Json Deserialization failed: expected an object "
                                       "with a `records` array"))
    records = body["records"]
    if len(records) > MAX_RECORDS:
        raise SfException(400, SfError("EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 "
                                       "records into this call"))
    return records, bool(body.get("allOrNone", False))


def _type_of(view: Org, record: Any) -> tuple[str | None, SfError | None]:
    if not isinstance(record, dict):
        return None, SfError("JSON_PARSER_ERROR", "Each record must be a JSON object")
    attributes = record.get("attributes")
    name = attributes.get("type") if isinstance(attributes, dict) else None
    if not name:
        return None, SfError("INVALID_TYPE", "Must send a concrete entity type.")
    found = view.object(name)
    if found is None:
        return None, SfError("INVALID_TYPE", f"sObject type '{name}' is not supported.")
    return found.name, None


def _item(result: WriteResult, *, with_created: bool = False, keep_id: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if result.id and (result.success or keep_id):
        out["id"] = result.id
    out["success"] = result.success
    out["errors"] = [e.collection() for e in result.errors]
    if with_created:
        out["created"] = result.created
    return out


def _tripped(state: Any, records: list[Any]) -> list[WriteResult] | None:
    """Every record failed with the same error when the call trips an injected trigger fault (faults.py);
    nothing is written: the trigger's transaction is rolled back."""
    obj = next((_type_of(state.org, r)[0] for r in records if _type_of(state.org, r)[0]), None) or ""
    error = state.faults.trigger_error(obj, [list(r.values()) for r in records if isinstance(r, dict)])
    if error is None:
        return None
    return [WriteResult(None, errors=[SfError(*error)]) for _ in records]


def _run(store: Store, all_or_none: bool, writes: list[Any]) -> list[WriteResult]:
    """Call each write; with allOrNone a failure undoes all and the others report the rollback."""
    results: list[WriteResult] = []
    with store.transaction():
        results = [w() if callable(w) else w for w in writes]
        if all_or_none and not all(r.success for r in results):
            raise Rollback
    if all_or_none and not all(r.success for r in results):
        results = [r if not r.success else WriteResult(r.id, created=r.created, errors=[ROLLED_BACK])
                   for r in results]
    return results


@router.post("/composite/sobjects")
async def create_records(request: Request, state: State, view: CallerOrg, session: CurrentSession) -> JSONResponse:
    records, all_or_none = _payload(await json_body(request))
    writes: list[Any] = []
    for record in records:
        obj, error = _type_of(view, record)
        if error or obj is None:
            writes.append(WriteResult(None, errors=[error or ROLLED_BACK]))
        elif "id" in {k.lower() for k in record}:
            writes.append(WriteResult(None, errors=[SfError("INVALID_FIELD", "cannot specify Id in an insert "
                                                            "call", ("Id",))]))
        else:
            writes.append(lambda o=obj, r=record: state.store.insert(o, r, view=view,
                                                                         user_id=session.user_id))
    results = _tripped(state, records) or _run(state.store, all_or_none, writes)
    return JSONResponse([_item(r, keep_id=False) for r in results])


@router.patch("/composite/sobjects")
async def update_records(request: Request, state: State, view: CallerOrg, session: CurrentSession) -> JSONResponse:
    records, all_or_none = _payload(await json_body(request))
    writes: list[Any] = []
    for record in records:
        obj, error = _type_of(view, record)
        record_id = next((v for k, v in record.items() if k.lower() == "id"), None) if isinstance(record, dict) \
            else None
        if error or obj is None:
            writes.append(WriteResult(None, errors=[error or ROLLED_BACK]))
        elif not record_id:
            writes.append(WriteResult(None, errors=[SfError("MISSING_ARGUMENT", "Id not specified in an update "
                                                            "call", ("Id",))]))
        else:
            writes.append(lambda o=obj, r=record, i=str(record_id): state.store.update(o, i, r, view=view,
                                                                                          user_id=session.user_id))
    results = _tripped(state, records) or _run(state.store, all_or_none, writes)
    return JSONResponse([_item(r) for r in results])


@router.patch("/composite/sobjects/{obj}/{field}")
async def upsert_records(obj: str, field: str, request: Request, state: State, view: CallerOrg,
                         session: CurrentSession) -> JSONResponse:
    od = known_object(view, obj)
    fd = od.field(field)
    if fd is None or not (fd.external_id or fd.id_lookup):
        raise SfException(400, SfError("INVALID_FIELD", f"Field name provided, {field} is not an External ID "
                                       f"or indexed field for {od.name}"))
    records, all_or_none = _payload(await json_body(request))
    keys = [_key_of(r, fd.name) for r in records]
    seen: dict[Any, int] = {}
    for key in keys:
        if key is not None:
            seen[key] = seen.get(key, 0) + 1
    writes: list[Any] = []
    for record, key in zip(records, keys, strict=True):
        obj_name, error = _type_of(view, record)
        if error or obj_name is None:
            writes.append(WriteResult(None, errors=[error or ROLLED_BACK]))
        elif obj_name != od.name:
            writes.append(WriteResult(None, errors=[SfError("INVALID_TYPE", f"Record type {obj_name} does not "
                                                            f"match the type {od.name} in the URI")]))
        elif key is None:
            writes.append(WriteResult(None, errors=[SfError("MISSING_ARGUMENT", f"{fd.name} not specified",
                                                            (fd.name,))]))
        elif seen[key] > 1:
            writes.append(WriteResult(None, errors=[SfError("DUPLICATE_VALUE", "Duplicate external id "
                                                            f"specified: {record[_field_key(record, fd.name)]}",
                                                            (fd.name,))]))
        else:
            value = record[_field_key(record, fd.name)]
            writes.append(lambda r=record, v=value: _upsert_one(state.store, od.name, fd.name, v, r, view,
                                                                          session.user_id))
    results = _tripped(state, records) or _run(state.store, all_or_none, writes)
    return JSONResponse([_item(r, with_created=True) for r in results])


def _field_key(record: dict[str, Any], field: str) -> str:
    return next(k for k in record if k.lower() == field.lower())


def _key_of(record: Any, field: str) -> Any:
    if not isinstance(record, dict):
        return None
    value = next((v for k, v in record.items() if k.lower() == field.lower()), None)
    if value in (None, ""):
        return None
    return value.lower() if isinstance(value, str) else value


def _upsert_one(store: Store, obj: str, field: str, value: Any, record: dict[str, Any], view: Org,
                user_id: str) -> WriteResult:
    result = store.upsert(obj, field, value, record, view=view, user_id=user_id)
    if result.matches:
        return WriteResult(None, errors=[SfError("DUPLICATE_EXTERNAL_ID", f"{field}: more than one record found "
                                                 f"for external id field: {result.matches}", (field,))])
    return result


@router.delete("/composite/sobjects")
async def delete_records(request: Request, state: State, view: CallerOrg, session: CurrentSession) -> JSONResponse:
    raw = request.query_params.get("ids", "")
    ids = [i.strip() for i in raw.split(",") if i.strip()]
    if not ids:
        raise SfException(400, SfError("REQUIRED_FIELD_MISSING", "At least 1 Id is required."))
    if len(ids) > MAX_RECORDS:
        raise SfException(400, SfError("EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 "
                                       "records into this call"))
    all_or_none = request.query_params.get("allOrNone", "false").lower() == "true"
    writes: list[Any] = []
    for record_id in ids:
        if not is_well_formed(record_id) or state.org.object_for_id(record_id) is None:
            writes.append(WriteResult(None, errors=[SfError("MALFORMED_ID", f"malformed id {record_id}")]))
        else:
            writes.append(partial(state.store.delete, None, to18(record_id), view=view,
                                  user_id=session.user_id))
    results = _run(state.store, all_or_none, writes)
    return JSONResponse([_item(r) for r in results])
