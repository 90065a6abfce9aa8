"""Field values in and out: JSON or Bulk CSV text → the wire format the store keeps, per field type.

The store keeps values exactly as Salesforce returns them: str for text, "YYYY-MM-DD" for dates,
"YYYY-MM-DDTHH:MM:SS.000+0000" (UTC) for datetimes, int/float for numbers, bool, or None.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from .errors import SfError
from .org import NUMBER_TYPES, STRING_TYPES, FieldDef

NULL_TEXT = "#N/A"  # Bulk CSV: the value that sets a field to null
_SOAP_NAMES = {"double": "double", "currency": "double", "percent": "double", "int": "int", "boolean": "boolean",
               "date": "date", "datetime": "datetime"}
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TRUE = {"true", "1", "yes", "y"}
_FALSE = {"false", "0", "no", "n"}


def datetime_wire(moment: datetime) -> str:
    """A datetime as Salesforce writes it: millisecond precision, UTC, offset without a colon."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def now_wire() -> str:
    """The current time in wire format."""
    return datetime_wire(datetime.now(UTC))


def parse_datetime(raw: str) -> datetime | None:
    """ISO 8601 with `Z`, `+hh:mm`, `+hhmm` or no offset (UTC); a bare date is midnight UTC."""
    text = raw.strip()
    if _DATE_RE.match(text):
        text += "T00:00:00"
    text = text.replace("Z", "+00:00").replace("z", "+00:00")
    offset = re.search(r"([+-])(\d{2})(\d{2})$", text)
    if offset and text[-5] in "+-" and ":" not in text[-5:]:
        text = text[:-5] + f"{offset.group(1)}{offset.group(2)}:{offset.group(3)}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _type_error(fd: FieldDef, value: Any) -> SfError:
    """The JSON deserialisation error Salesforce gives for a value of the wrong JSON type."""
    kind = "VALUE_STRING" if isinstance(value, str) else ("VALUE_TRUE" if value is True else
                                                             "VALUE_FALSE" if value is False else
                                                             "START_OBJECT" if isinstance(value, dict) else
                                                             "START_ARRAY" if isinstance(value, list) else
                                                             "VALUE_NUMBER")
    soap = _SOAP_NAMES.get(fd.type, "string")
    return SfError("JSON_PARSER_ERROR",
                   f"Cannot deserialize instance of {soap} from {kind} value {value} or request may be "
                   f"missing a required field", (fd.name,))


def _text_error(fd: FieldDef, value: str) -> SfError:
    """Bulk's wording for a CSV cell that does not parse as the field's type."""
    soap = _SOAP_NAMES.get(fd.type, "string")
    return SfError("INVALID_TYPE_ON_FIELD_IN_RECORD", f"{fd.label}: value not of required type: {value}",
                   (fd.name,), {"soapType": f"xsd:{soap}"})


def from_json(fd: FieldDef, value: Any) -> tuple[Any, SfError | None]:
    """A JSON value for `fd` in wire format, or the error Salesforce returns for it."""
    if value is None:
        return None, None
    if fd.type in STRING_TYPES or fd.type in ("id", "reference"):
        if isinstance(value, bool) or isinstance(value, (dict, list)):
            return None, _type_error(fd, value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return (";".join(value) if isinstance(value, list) else str(value)), None
    if fd.type == "boolean":
        if isinstance(value, bool):
            return value, None
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true", None
        return None, _type_error(fd, value)
    if fd.type in NUMBER_TYPES:
        return _number(fd, value, text=False)
    if fd.type == "date":
        if isinstance(value, str):
            moment = parse_datetime(value)
            if moment is not None:
                return (value if _DATE_RE.match(value) else moment.date().isoformat()), None
        return None, _type_error(fd, value)
    if fd.type == "datetime":
        if isinstance(value, str):
            moment = parse_datetime(value)
            if moment is not None:
                return datetime_wire(moment), None
        return None, _type_error(fd, value)
    return value, None


def from_text(fd: FieldDef, value: str) -> tuple[Any, SfError | None]:
    """A Bulk CSV cell for `fd` in wire format (`#N/A` is null), or the row's error."""
    if value == NULL_TEXT:
        return None, None
    if fd.type in STRING_TYPES or fd.type in ("id", "reference"):
        return value, None
    if fd.type == "boolean":
        lowered = value.strip().lower()
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE, None
        return None, _text_error(fd, value)
    if fd.type in NUMBER_TYPES:
        return _number(fd, value, text=True)
    if fd.type == "date":
        moment = parse_datetime(value)
        return (moment.date().isoformat(), None) if moment else (None, _text_error(fd, value))
    if fd.type == "datetime":
        moment = parse_datetime(value)
        return (datetime_wire(moment), None) if moment else (None, _text_error(fd, value))
    return value, None


def _number(fd: FieldDef, value: Any, *, text: bool) -> tuple[Any, SfError | None]:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None, _type_error(fd, value)
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except ValueError:
        return None, (_text_error(fd, value) if text else _type_error(fd, value))
    if math.isnan(number) or math.isinf(number):
        return None, (_text_error(fd, str(value)) if text else _type_error(fd, value))
    if fd.type == "int":
        if not number.is_integer():
            return None, (_text_error(fd, str(value)) if text else _type_error(fd, value))
        return int(number), None
    return (int(number) if number.is_integer() and isinstance(value, int) else number), None
