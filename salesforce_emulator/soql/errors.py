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


def invalid_field(message: str) -> SfException:
    """400 INVALID_FIELD."""
    return SfException(400, SfError("INVALID_FIELD", message))


def invalid_type(name: str) -> SfException:
    """400 INVALID_TYPE for an object the org does not have."""
    return SfException(400, SfError("INVALID_TYPE", f"sObject type '{name}' is not supported. If you are attempting "
                                    "to use a custom object, be sure to append the '__c' after the entity name. "
                                    "Please reference your WSDL or the describe call for the appropriate names."))


def no_such_column(name: str, obj: ObjectDef) -> SfException:
    """400 INVALID_FIELD for a field the object does not have."""
    return invalid_field(f"No such column '{name}' on entity '{obj.name}'. If you are attempting to use a custom "
                         "field, be sure to append the '__c' after the custom field name. Please reference your WSDL "
                         "or the describe call for the appropriate names.")


def bad_relationship(name: str, where: str = "field path") -> SfException:
    """400 INVALID_FIELD for a relationship name the object does not have."""
    return invalid_field(f"Didn't understand relationship '{name}' in {where}. If you are attempting to use a custom "
                         "relationship, be sure to append the '__r' after the custom relationship name. Please "
                         "reference your WSDL or the describe call for the appropriate names.")


def out_of_range(message: str) -> SfException:
    """400 NUMBER_OUTSIDE_VALID_RANGE (OFFSET over 2,000)."""
    return SfException(400, SfError("NUMBER_OUTSIDE_VALID_RANGE", message))
