"""What the sObject and collections routes share: the JSON body, record rendering, error statuses."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from ..errors import SfError, SfException
from ..org import ObjectDef

# Single-record REST calls answer these codes with 404; every other record error is a 400.
_NOT_FOUND_CODES = {"NOT_FOUND", "ENTITY_IS_DELETED"}


async def json_body(request: Request) -> Any:
    """The parsed JSON body, or 400 JSON_PARSER_ERROR as Salesforce answers unparseable input."""
    raw = await request.body()
    try:
        return json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SfException(400, SfError("JSON_PARSER_ERROR", f"Unexpected character: was expecting a JSON value "
                                       f"at [line:{exc.lineno if hasattr(exc, 'lineno') else 1}, column:"
                                       f"{exc.colno if hasattr(exc, 'colno') else 1}]")) from None


def object_body(body: Any) -> dict[str, Any]:
    """A JSON object body, or the error Salesforce gives for any other JSON."""
    if not isinstance(body, dict):
        raise SfException(400, SfError("JSON_PARSER_ERROR", "Cannot deserialize instance of sObject from "
                                       f"{type(body).__name__.upper()} value"))
    return body


def record_errors(errors: list[SfError]) -> SfException:
    """A failed single-record write as its REST response."""
    status = 404 if errors and errors[0].code in _NOT_FOUND_CODES else 400
    return SfException(status, *errors)


def version_text(request: Request) -> str:
    """The version as written in the path, without the `v` (e.g. "62.0")."""
    return str(request.path_params.get("version", "v62.0")).removeprefix("v")


def record_url(version: str, obj: ObjectDef, record_id: str) -> str:
    return f"/services/data/v{version}/sobjects/{obj.name}/{record_id}"


def render(obj: ObjectDef, record: dict[str, Any], version: str, fields: list[str] | None = None) -> dict[str, Any]:
    """A record as REST returns it: `attributes` first, then the fields (all, or the requested ones)."""
    out: dict[str, Any] = {"attributes": {"type": obj.name, "url": record_url(version, obj, record["Id"])}}
    if fields is None:  # every field the caller can see (`obj` is their view of the object)
        out.update({k: v for k, v in record.items() if k in obj.fields})
        return out
    for name in fields:
        fd = obj.field(name)
        if fd is None:
            raise SfException(400, SfError("INVALID_FIELD", f"No such column '{name}' on sobject of type "
                                           f"{obj.name}"))
        out[fd.name] = record[fd.name]
    return out


def known_object(state_org: Any, name: str) -> ObjectDef:
    """The object named in the path, or 404 NOT_FOUND."""
    obj = state_org.object(name)
    if obj is None:
        raise SfException(404, SfError("NOT_FOUND", "The requested resource does not exist"))
    return obj
