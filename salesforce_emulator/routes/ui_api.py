"""Routes: User Interface API picklist values per record type (`ui-api/object-info/{object}/picklist-values`).

A record type narrows the values of its picklists; describe's `picklistValues` are the Master list. A client
reads one record type's values here: every picklist field's (`.../picklist-values/{recordTypeId}`, a Picklist
Values Collection) or one field's (`.../picklist-values/{recordTypeId}/{field}`, Picklist Values), as the user
sees the object. The Master record type (012000000000000AAA) answers with every active value.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..errors import NOT_FOUND, SfException
from .deps import CallerOrg
from .records import known_object, version_text

router = APIRouter()


@router.get("/ui-api/object-info/{obj}/picklist-values/{record_type_id}")
@router.get("/ui-api/object-info/{obj}/picklist-values/{record_type_id}/")
async def picklist_values_by_record_type(obj: str, record_type_id: str, request: Request,
                                         view: CallerOrg) -> JSONResponse:
    """Every picklist field's values in this record type (`picklistFieldValues`: field → Picklist Values)."""
    body = known_object(view, obj).picklist_values(version_text(request), record_type_id)
    if body is None:
        raise SfException(404, NOT_FOUND)
    return JSONResponse(body)


@router.get("/ui-api/object-info/{obj}/picklist-values/{record_type_id}/{field}")
async def picklist_values(obj: str, record_type_id: str, field: str, request: Request,
                          view: CallerOrg) -> JSONResponse:
    """One picklist field's values in this record type."""
    body = known_object(view, obj).picklist_values(version_text(request), record_type_id, field)
    if body is None:
        raise SfException(404, NOT_FOUND)
    return JSONResponse(body)
