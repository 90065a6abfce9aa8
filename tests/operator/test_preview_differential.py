"""Preview is exact: a generated corpus goes through `preview` and then through the real pipeline against
the same org (which the preview leaves untouched); every event's predicted outcome — create, update,
skip or fail, and the error code — is the one the run records."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from preview_support import PARTNER_LEAD, UNCOALESCED, corpus, preview_then_run, seed_org

from destination.events import Event


def _record_typed_failures(events: list[Event], actual: dict[tuple[str, str], tuple[str, str | None]]
                           ) -> Counter[str]:
    """Outcomes of the lead events that name a record type or set a Status some record type lacks."""
    seen: Counter[str] = Counter()
    for event in events:
        traits = event.body.get("traits") or {}
        if event.body.get("type") != "identify" or not ("record_type" in traits or
                                                        traits.get("status") == "Working - Contacted"):
            continue
        verdict, code = actual.get((event.body["messageId"], "leads"), ("none", None))
        seen[code or verdict] += 1
    return seen


async def test_preview_predicts_every_outcome_of_a_generated_corpus(tls_emulator: Any, tmp_path: Path) -> None:
    ids = seed_org(tls_emulator.state.store)
    events = corpus(1200, ids)
    result = await preview_then_run(tls_emulator, events, tmp_path)
    assert len(result.actual) >= 1200
    assert result.disagreements() == []
    kinds = Counter(v for v in result.actual.values())
    codes = {code for verdict, code in result.actual.values() if verdict == "fail"}
    # the corpus reaches every kind of outcome it is meant to exercise
    assert {"create", "update", "delete", "skip", "fail"} <= {verdict for verdict, _ in kinds}
    assert {"REQUIRED_FIELD_MISSING", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "STRING_TOO_LONG",
            "JSON_PARSER_ERROR", "INVALID_TYPE_ON_FIELD_IN_RECORD", "INVALID_EMAIL_ADDRESS",
            "INVALID_FIELD_FOR_INSERT_UPDATE", "NOT_FOUND", "MAPPING_ERROR", "MALFORMED_ID",
            "INVALID_CROSS_REFERENCE_KEY"} <= codes, kinds
    # record types: a Status valid for the field but not the (given, default or existing) record type fails;
    # invalid record types fail; valid ones create and update
    typed = _record_typed_failures(events, result.actual)
    assert typed["INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"] and typed["INVALID_CROSS_REFERENCE_KEY"], typed
    assert typed["create"] and typed["update"], typed
    partner_working = [e for e in events if (e.body.get("traits") or {}).get("record_type") == PARTNER_LEAD and
                       e.body["traits"].get("status") == "Working - Contacted"]
    assert ("fail", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST") in {
        result.actual[(e.body["messageId"], "leads")] for e in partner_working}
    # updates by Id: the record's type comes from the preview's lookup (a Renewal lacks "Qualification")
    renewals = {rid[:15] for rid in ids["renewals"]}
    qualified = [e for e in events if (e.body.get("properties") or {}).get("stage") == "Qualification"
                 and str(e.body["properties"].get("deal_id", ""))[:15] in renewals]
    assert ("fail", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST") in {
        result.actual[(e.body["messageId"], "deals")] for e in qualified}


async def test_preview_predicts_the_outcomes_of_a_user_with_a_restricted_profile(tls_emulator: Any,
                                                                                  tmp_path: Path) -> None:
    """The same corpus as the emulator's restricted integration user (field-level security and object
    permissions from its profile and permission set): describe answers for that user, so the preview
    predicts the permission errors the org then returns."""
    from destination.salesforce.connection import AuthMethod, AuthSettings

    ids = seed_org(tls_emulator.state.store)
    restricted = AuthSettings(AuthMethod.CLIENT_CREDENTIALS, "restricted-client", "restricted-secret")
    result = await preview_then_run(tls_emulator, corpus(1200, ids), tmp_path, restricted, UNCOALESCED)
    assert len(result.actual) >= 1200
    assert result.disagreements() == []
    codes = {code for verdict, code in result.actual.values() if verdict == "fail"}
    assert codes & {"INSUFFICIENT_ACCESS_OR_READONLY", "INVALID_FIELD_FOR_INSERT_UPDATE", "CONFIG_ERROR"}, codes
    assert "INVALID_CROSS_REFERENCE_KEY" in codes  # Partner_Lead is not available to this user
