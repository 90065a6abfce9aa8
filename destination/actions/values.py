"""Field values from an event: path, static value or template; transforms; blank checks; domain form."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .model import FieldSpec, Transform
from .paths import MISSING, getter, resolve

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


class ValueProblem(ValueError):
    """A value that cannot be produced (failed transform, missing required value)."""


def is_blank(value: Any) -> bool:
    return value is MISSING or value is None or (isinstance(value, str) and value.strip() == "")


def render_template(template: str, body: dict[str, Any]) -> str:
    """Replace each `{{ path }}` with the value there ("" when missing); no code is evaluated."""
    def one(match: re.Match[str]) -> str:
        value = resolve(body, match.group(1))
        return "" if value is MISSING or value is None else _text(value)

    return _PLACEHOLDER.sub(one, template)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def source_value(spec: FieldSpec, body: dict[str, Any]) -> Any:
    """The raw value of a spec (MISSING when its path is absent), before the default and transforms."""
    if spec.path is not None:
        return getter(spec.path)(body)
    if spec.template is not None:
        return render_template(spec.template, body)
    if spec.value is not None:
        return spec.value
    return MISSING


def domain_of(value: str) -> str:
    """`https://www.Acme.com/pricing` → `acme.com`; an e-mail gives its domain."""
    text = value.strip().lower()
    if "@" in text and "/" not in text:
        text = text.rsplit("@", 1)[1]
    text = re.sub(r"^[a-z][a-z0-9+.\-]*://", "", text)
    text = text.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].split(":", 1)[0]
    return text.removeprefix("www.").strip(".")


def apply_transform(transform: Transform, value: Any, *, length: int | None = None) -> Any:
    """One transform; ValueProblem when the value does not convert."""
    if value is None:
        return None
    if transform is Transform.LOWERCASE:
        return str(value).lower()
    if transform is Transform.UPPERCASE:
        return str(value).upper()
    if transform is Transform.TRIM:
        return str(value).strip()
    if transform is Transform.EMAIL_DOMAIN:
        text = str(value).strip()
        if "@" not in text:
            raise ValueProblem(f"email_domain: {text!r} is not an e-mail address")
        return text.rsplit("@", 1)[1].lower()
    if transform is Transform.DOMAIN:
        return domain_of(str(value)) or None
    if transform is Transform.TO_NUMBER:
        return _number(value)
    if transform is Transform.TO_BOOL:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ValueProblem(f"to_bool: {value!r} is not a boolean")
    if transform is Transform.TO_DATE:
        return _moment(value).date().isoformat() if not _is_date_only(value) else str(value).strip()
    if transform is Transform.TO_DATETIME:
        return _moment(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
            f"{_moment(value).microsecond // 1000:03d}Z"
    if transform is Transform.TRUNCATE:
        return str(value)[:length] if length else value
    raise ValueProblem(f"unknown transform {transform}")


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueProblem(f"to_number: {value!r} is not a number")
    if isinstance(value, (int, float)):
        return value
    text = str(value).strip().replace(",", "")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueProblem(f"to_number: {value!r} is not a number") from None
    if not number.is_finite():
        raise ValueProblem(f"to_number: {value!r} is not a finite number")
    return int(number) if number == number.to_integral_value() and "." not in text else float(number)


def _is_date_only(value: Any) -> bool:
    return isinstance(value, str) and bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()))


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value / 1000 if value > 10**11 else value  # epoch milliseconds or seconds
        return datetime.fromtimestamp(seconds, UTC)
    text = str(value).strip().replace("Z", "+00:00").replace("z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueProblem(f"{value!r} is not a date or datetime") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def field_value(spec: FieldSpec, body: dict[str, Any], *, length: int | None = None) -> Any:
    """The final value of a field: source, default when blank, transforms, truncation. MISSING if none."""
    plain = spec.__dict__.get("_plain_path")  # a bare `$.path` field, the common case: read, check, done
    if plain is None:
        plain = spec.__dict__["_plain_path"] = (
            getter(spec.path) if spec.path is not None and spec.default is None and spec.transform is None
            and not spec.truncate else False)
    if plain:
        value = plain(body)
        if isinstance(value, (dict, list)):
            raise ValueProblem(f"a {type(value).__name__} cannot be written to a field")
        return value
    value = source_value(spec, body)
    if is_blank(value) and spec.default is not None:
        value = spec.default
    if value is MISSING:
        return MISSING
    for transform in spec.transforms:
        value = apply_transform(transform, value, length=spec.truncate or length)
    if spec.truncate and isinstance(value, str):
        value = value[:spec.truncate]
    if isinstance(value, (dict, list)):
        raise ValueProblem(f"a {type(value).__name__} cannot be written to a field")
    return value
