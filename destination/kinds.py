"""The kinds the data path shares: operations, delivery modes, field policies, matcher comparisons, what to do
with several matches, value transforms. Plain enums, so planning and writing need not import the YAML model
(destination/actions/model.py), which uses them as field types."""

from __future__ import annotations

from enum import StrEnum


class Operation(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UPSERT = "upsert"
    DELETE = "delete"


class OnManyMatches(StrEnum):
    FAIL = "fail"
    NEWEST = "newest"
    ALL = "all"


class OnDuplicate(StrEnum):
    FAIL = "fail"  # the event fails with DUPLICATES_DETECTED (and the matched Ids in its message)
    UPDATE_EXISTING = "update_existing"  # write to the record the duplicate rule matched instead


class Mode(StrEnum):
    REST = "rest"
    BULK = "bulk"


class Policy(StrEnum):
    ALWAYS = "always"  # write the value, even a blank one (clears the field)
    SKIP_BLANK = "skip_blank"  # write it unless it is blank
    SET_IF_EMPTY = "set_if_empty"  # write it only when the record's field is empty
    MOST_RECENT = "most_recent"  # write it only when the event is newer than the record's last change


class Transform(StrEnum):
    LOWERCASE = "lowercase"
    UPPERCASE = "uppercase"
    TRIM = "trim"
    EMAIL_DOMAIN = "email_domain"
    DOMAIN = "domain"
    TO_DATE = "to_date"
    TO_DATETIME = "to_datetime"
    TO_NUMBER = "to_number"
    TO_BOOL = "to_bool"
    TRUNCATE = "truncate"
    SPLIT = "split"  # "a, b" → ["a", "b"] (separator ","; follow with join, or use {split: {index: 0}})
    JOIN = "join"  # ["a", "b"] → "a;b" (separator ";", the multi-select picklist form)
    COALESCE = "coalesce"  # a list → its first non-blank item


class OnMissing(StrEnum):
    BLANK = "blank"  # a missing placeholder renders as ""; all of them missing = a blank value (not written)
    ERROR = "error"  # a missing placeholder fails the event with MAPPING_ERROR naming it


class Compare(StrEnum):
    EXACT = "exact"
    DOMAIN = "domain"  # scheme, www., path and case stripped on both sides


class Direction(StrEnum):
    """Which way a field flows when a source syncs both ways (`sync_back:`)."""

    TO_SALESFORCE = "to_salesforce"  # the app owns it: pushed, never published back
    FROM_SALESFORCE = "from_salesforce"  # Salesforce owns it: published, never written by the push direction
    BOTH = "both"  # either side may change it; `merge` decides a conflict


class Merge(StrEnum):
    """Who wins a field both sides change (direction `both`)."""

    MOST_RECENT = "most_recent"  # the later change: event time vs the record's LastModifiedDate
    SALESFORCE_WINS = "salesforce_wins"  # the push direction only fills the field while it is blank
    APP_WINS = "app_wins"  # the push direction writes as the action says
