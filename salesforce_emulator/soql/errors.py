"""The errors a SOQL statement can earn, worded as Salesforce words them (reference §3.3)."""

from __future__ import annotations

from ..errors import SfError, SfException
from ..org import ObjectDef


def malformed(message: str) -> SfException:
    """400 MALFORMED_QUERY."""
    return SfException(400, SfError("MALFORMED_QUERY", message))


def unexpected(shown: str, pos: int) -> SfException:
    """400 MALFORMED_QUERY for a token the grammar does not allow where it stands."""
    return malformed(f"unexpected token: '{shown}'\nposition {pos}")


def caret(source: str, pos: int) -> str:
    """Salesforce's pointer at a name in the statement: the line, a caret under it, row and column."""
    if not source or pos < 0:
        return ""
    row = source.count("\n", 0, pos) + 1
    start = source.rfind("\n", 0, pos) + 1
    end = source.find("\n", pos)
    line = source[start:end if end >= 0 else len(source)]
    return f"\n{line}\n{' ' * (pos - start)}^\nERROR at Row:{row}:Column:{pos - start + 1}\n"


def invalid_field(message: str, where: str = "") -> SfException:
    """400 INVALID_FIELD; `where` is the caret diagram, when the name's place is known."""
    return SfException(400, SfError("INVALID_FIELD", where + message))


def invalid_type(name: str, where: str = "") -> SfException:
    """400 INVALID_TYPE for an object the org does not have."""
    return SfException(400, SfError("INVALID_TYPE", f"{where}sObject type '{name}' is not supported. If you are "
                                    "attempting to use a custom object, be sure to append the '__c' after the entity "
                                    "name. Please reference your WSDL or the describe call for the appropriate "
                                    "names."))


def no_such_column(name: str, obj: ObjectDef, where: str = "") -> SfException:
    """400 INVALID_FIELD for a field the object does not have."""
    return invalid_field(f"No such column '{name}' on entity '{obj.name}'. If you are attempting to use a custom "
                         "field, be sure to append the '__c' after the custom field name. Please reference your WSDL "
                         "or the describe call for the appropriate names.", where)


def bad_relationship(name: str, where: str = "", part: str = "field path") -> SfException:
    """400 INVALID_FIELD for a relationship name the object does not have."""
    return invalid_field(f"Didn't understand relationship '{name}' in {part}. If you are attempting to use a custom "
                         "relationship, be sure to append the '__r' after the custom relationship name. Please "
                         "reference your WSDL or the describe call for the appropriate names.", where)


def out_of_range(message: str) -> SfException:
    """400 NUMBER_OUTSIDE_VALID_RANGE (OFFSET over 2,000)."""
    return SfException(400, SfError("NUMBER_OUTSIDE_VALID_RANGE", message))
