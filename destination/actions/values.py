"""Field values from an event: paths (with fallbacks), static values, templates, defaults; transforms;
blank checks; domain form. Every bad input is a ValueProblem (a per-event MAPPING_ERROR), never another
exception, and every check runs in time bounded by the input's size, not its numeric value."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .model import FieldSpec, OnMissing, Transform, TransformCall, TransformStep
from .paths import MISSING, getter, resolve

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}
# No Salesforce number field holds more than 18 digits (precision ≤ 18), so any magnitude ≥ 10^18 is rejected
# here; the target field's own precision and scale are checked once its describe is known (destination/fit.py).
MAX_INTEGER_DIGITS = 18
NUMBER_LIMIT = 10 ** MAX_INTEGER_DIGITS
_NUMBER_TEXT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE]([+-]?\d+))?")
_MAX_NUMBER_TEXT = 64  # longer text is not a number anyone meant; refusing it keeps to_number constant-time


class ValueProblem(ValueError):
    """A value that cannot be produced (failed transform, missing required value)."""


class NumberOutOfRange(ValueProblem):
    """A number that is not finite, or larger than the field (or any Salesforce number field) holds."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def is_blank(value: Any) -> bool:
    return value is MISSING or value is None or (isinstance(value, str) and value.strip() == "")


def render_template(template: str, body: dict[str, Any], on_missing: OnMissing = OnMissing.BLANK) -> str:
    """Replace each `{{ path }}` with the value there; no code is evaluated. A missing or blank placeholder
    renders as "" — and when every placeholder is missing the result is "" (blank, so not written), never
    the template's fixed text alone (`Plan: `). With on_missing=error a missing placeholder is a ValueProblem."""
    parts: list[str] = []
    found = 0
    at = 0
    for match in _PLACEHOLDER.finditer(template):
        parts.append(template[at:match.start()])
        at = match.end()
        value = resolve(body, match.group(1))
        if is_blank(value):
            if on_missing is OnMissing.ERROR:
                raise ValueProblem(f"template placeholder {{{{ {match.group(1)} }}}} has no value in this event")
            continue
        found += 1
        parts.append(_text(value))
    if at == 0:
        return template  # no placeholders: fixed text
    if not found:
        return ""  # every placeholder missing: blank, never the fixed text alone
    parts.append(template[at:])
    return "".join(parts)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def source_value(spec: FieldSpec, body: dict[str, Any]) -> Any:
    """The raw value of a spec (MISSING when no path has a value), before the default and transforms.
    With several paths the first non-blank value wins."""
    if spec.path is not None:
        if isinstance(spec.path, str):
            return getter(spec.path)(body)
        value: Any = MISSING
        for path in spec.path:
            value = getter(path)(body)
            if not is_blank(value):
                return value
        return value
    if spec.template is not None:
        # every placeholder missing is like an absent key: not written, even under policy: always
        text = render_template(spec.template, body, spec.on_missing)
        return text if text else MISSING
    if spec.value is not None:
        return spec.value
    return MISSING


def default_value(spec: FieldSpec, body: dict[str, Any]) -> Any:
    """The spec's default: a static value, or a template rendered against the event (blank when all of its
    placeholders are missing); MISSING when there is none."""
    if spec.default is None:
        return MISSING
    if _is_template(spec.default):
        return render_template(spec.default, body, spec.on_missing)
    return spec.default


def domain_of(value: str) -> str:
    """`https://www.Acme.com/pricing` → `acme.com`; an e-mail gives its domain."""
    text = value.strip().lower()
    if "@" in text and "/" not in text:
        text = text.rsplit("@", 1)[1]
    text = re.sub(r"^[a-z][a-z0-9+.\-]*://", "", text)
    text = text.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].split(":", 1)[0]
    return text.removeprefix("www.").strip(".")


def apply_transform(transform: TransformStep, value: Any, *, length: int | None = None,
                    body: dict[str, Any] | None = None) -> Any:
    """One transform; ValueProblem when the value does not convert. `body` resolves coalesce's paths."""
    if isinstance(transform, TransformCall):
        return _call(transform, value, body or {})
    if transform is Transform.COALESCE:
        return _first_present(value) if isinstance(value, list) else value
    if value is None or value is MISSING:
        return value
    if transform is Transform.LOWERCASE:
        return str(value).lower()
    if transform is Transform.UPPERCASE:
        return str(value).upper()
    if transform is Transform.TRIM:
        return str(value).strip()
    if transform is Transform.EMAIL_DOMAIN:
        text = str(value).strip()
        if "@" not in text:
            raise ValueProblem(f"email_domain: {_show(text)} is not an e-mail address")
        return text.rsplit("@", 1)[1].lower()
    if transform is Transform.DOMAIN:
        return domain_of(str(value)) or None
    if transform is Transform.TO_NUMBER:
        return to_number(value)
    if transform is Transform.TO_BOOL:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise ValueProblem(f"to_bool: {_show(value)} is not a boolean")
    if transform is Transform.TO_DATE:
        return moment_of(value).date().isoformat() if not _is_date_only(value) else str(value).strip()
    if transform is Transform.TO_DATETIME:
        try:
            moment = moment_of(value).astimezone(UTC)
        except OverflowError:  # year 1 or 9999 pushed past the calendar by its offset
            raise ValueProblem(f"{_show(value)} is not a datetime in range") from None
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    if transform is Transform.TRUNCATE:
        return str(value)[:length] if length else value
    if transform is Transform.SPLIT:
        return _split(value, ",", None)
    if transform is Transform.JOIN:
        return _join(value, ";")
    raise ValueProblem(f"unknown transform {transform}")


def _call(call: TransformCall, value: Any, body: dict[str, Any]) -> Any:
    if call.coalesce is not None:
        if not is_blank(value) and not (isinstance(value, list) and is_blank(_first_present(value))):
            return _first_present(value) if isinstance(value, list) else value
        for fallback in call.coalesce:
            candidate = getter(fallback)(body) if isinstance(fallback, str) and fallback.startswith("$") else fallback
            if not is_blank(candidate):
                return candidate
        return MISSING
    if value is None or value is MISSING:
        return value
    if call.replace is not None:
        try:
            return re.sub(call.replace.pattern, call.replace.replacement, _text(value))
        except (re.error, IndexError) as exc:  # a replacement naming a group the pattern lacks
            raise ValueProblem(f"replace {call.replace.pattern!r}: {exc}") from None
    if call.split is not None:
        return _split(value, call.split.separator, call.split.index)
    if call.join is not None:
        return _join(value, call.join.separator)
    raise ValueProblem(f"unknown transform {call}")


def _first_present(items: list[Any]) -> Any:
    return next((i for i in items if not is_blank(i)), MISSING)


def _split(value: Any, separator: str, index: int | None) -> Any:
    parts = [p.strip() for p in _text(value).split(separator)] if not isinstance(value, list) else value
    parts = [p for p in parts if not is_blank(p)]
    if index is None:
        return parts
    if -len(parts) <= index < len(parts):
        return parts[index]
    return MISSING


def _join(value: Any, separator: str) -> Any:
    if not isinstance(value, list):
        return value
    items = [_text(i) for i in value if not is_blank(i)]
    if any(isinstance(i, (dict, list)) for i in value):
        raise ValueProblem("join: the list holds objects or lists, not values")
    return separator.join(items)


def _show(value: Any) -> str:
    """A value for an error message, cut so a huge input does not make a huge message."""
    if isinstance(value, int) and value.bit_length() > 14_000:  # repr() refuses ints over 4,300 digits
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def to_number(value: Any) -> int | float:
    """A finite int or float below 10^18 in magnitude, or ValueProblem. Text is checked by shape and
    exponent before any conversion, so `"1e1000000"` costs no more than `"1"`."""
    if isinstance(value, bool):
        raise ValueProblem(f"to_number: {value!r} is not a number")
    if isinstance(value, int):
        if -NUMBER_LIMIT < value < NUMBER_LIMIT:
            return value
        raise NumberOutOfRange(f"to_number: {_show(value)} has more than {MAX_INTEGER_DIGITS} digits, more than any "
                           "Salesforce number field holds")
    if isinstance(value, float):
        return _finite(value, value)
    text = str(value).strip().replace(",", "") if not isinstance(value, (dict, list)) else ""
    shape = _NUMBER_TEXT.fullmatch(text) if len(text) <= _MAX_NUMBER_TEXT else None
    if shape is None:
        raise ValueProblem(f"to_number: {_show(value)} is not a number")
    exponent = shape.group(1)
    if exponent is not None and len(exponent.lstrip("+-").lstrip("0")) > 6:  # |exponent| ≥ 10^6: no arithmetic
        if exponent.startswith("-") or not any(c in "123456789" for c in text[:shape.start(1)]):
            return 0.0  # far below a double's smallest magnitude, or zero
        raise NumberOutOfRange(f"to_number: {_show(value)} is beyond what a Salesforce number field holds "
                               f"({MAX_INTEGER_DIGITS} digits)")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueProblem(f"to_number: {_show(value)} is not a number") from None
    if number.is_zero():
        return 0 if "." not in text else 0.0
    if number.adjusted() >= MAX_INTEGER_DIGITS:  # the exponent is known without expanding the digits
        raise NumberOutOfRange(f"to_number: {_show(value)} is beyond what a Salesforce number field holds "
                               f"({MAX_INTEGER_DIGITS} digits)")
    if number.adjusted() < -400:  # far below a double's smallest magnitude: zero, without the arithmetic
        return 0.0
    if "." not in text and number == number.to_integral_value():
        return int(number)
    return _finite(float(number), value)


def _finite(number: float, original: Any) -> float:
    if not math.isfinite(number):
        raise NumberOutOfRange(f"to_number: {_show(original)} is not a finite number")
    if abs(number) >= NUMBER_LIMIT:
        raise NumberOutOfRange(f"to_number: {_show(original)} is beyond what a Salesforce number field holds "
                           f"({MAX_INTEGER_DIGITS} digits)")
    return number


def _is_date_only(value: Any) -> bool:
    return isinstance(value, str) and bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()))


def moment_of(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            seconds = value / 1000 if value > 10**11 else value  # epoch milliseconds or seconds
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueProblem(f"{_show(value)} is not a date or datetime in range") from None
    text = str(value).strip().replace("Z", "+00:00").replace("z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueProblem(f"{_show(value)} is not a date or datetime") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def field_value(spec: FieldSpec, body: dict[str, Any], *, length: int | None = None) -> Any:
    """The final value of a field: source, transforms, truncation, then the default when blank. MISSING if
    none."""
    return resolve_field(spec, body, length=length)[0]


def resolve_field(spec: FieldSpec, body: dict[str, Any], *, length: int | None = None) -> tuple[Any, bool]:
    """(value, from_default): the field's value and whether it is its default (which never replaces a
    non-blank value in Salesforce). MISSING when there is neither a value nor a default."""
    compiled = spec.__dict__.get("_compiled")  # mapping calls this for every field of every event
    if compiled is None:
        compiled = spec.__dict__["_compiled"] = _compile(spec)
    plain, transforms, cut = compiled
    if plain is not None:  # a bare `$.path` field, the common case: read, check, done
        value = plain(body)
        return (value if type(value) in _SIMPLE else _writable(value)), False
    value = source_value(spec, body)
    for transform in transforms:  # each passes MISSING through, except coalesce, which may fill it
        value = apply_transform(transform, value, length=cut or length, body=body)
    if cut and isinstance(value, str):
        value = value[:cut]
    if spec.default is not None and is_blank(value):
        fallback = default_value(spec, body)
        if not is_blank(fallback):
            return _writable(fallback), True
    return (value if type(value) in _SIMPLE else _writable(value)), False


_SIMPLE = frozenset({str, int, bool, type(None)})


def _compile(spec: FieldSpec) -> tuple[Any, tuple[TransformStep, ...], int | None]:
    plain = (getter(spec.path) if isinstance(spec.path, str) and spec.default is None and spec.transform is None
             and spec.truncate is None else None)
    return plain, tuple(spec.transforms), spec.cut_at


def _writable(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        raise ValueProblem(f"a {type(value).__name__} cannot be written to a field")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueProblem(f"{value!r} is not a finite number")
    return value
