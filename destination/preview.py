"""Preview: the exact plan for a set of events — same triggers, mapping, lookups and planner as delivery —
with no writes. Totals of would-create / would-update / would-delete / would-skip / would-fail by reason,
and a few samples with the field-by-field change."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .actions.model import ActionFile
from .deliver import Delivery
from .events import Event
from .operations import RecordOp
from .outcomes import Outcome, Status
from .route import route


@dataclass
class Sample:
    event: str  # messageId
    action: str
    object: str
    verdict: str  # create | update | delete | skip | fail
    record_id: str | None
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)  # field → {"from": old, "to": new}
    reason: str | None = None


@dataclass
class PreviewReport:
    events: int = 0
    totals: Counter[str] = field(default_factory=Counter)  # create, update, delete, skip, fail
    reasons: Counter[str] = field(default_factory=Counter)  # "fail: NOT_FOUND", "skip: NOTHING_TO_CHANGE", ...
    samples: list[Sample] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"events": self.events, "would": {k: self.totals.get(k, 0) for k in
                                                 ("create", "update", "delete", "skip", "fail")},
                "reasons": dict(self.reasons.most_common()),
                "samples": [s.__dict__ for s in self.samples]}


async def preview(sources: Mapping[str, ActionFile], delivery: Delivery, events: Iterable[Event], *,
                  samples: int = 5) -> PreviewReport:
    """Plan every event without writing anything."""
    report = PreviewReport()
    groups: dict[tuple[str, ...], list[RecordOp]] = {}
    for event in events:
        report.events += 1
        for result in route(sources, event):
            if isinstance(result, Outcome):
                _count_outcome(report, result, samples)
            else:
                groups.setdefault(result.batch_key(), []).append(result)
    for ops in groups.values():
        for start in range(0, len(ops), 200):
            plan, outcomes = await delivery.prepare(ops[start:start + 200])
            for outcome in outcomes:
                _count_outcome(report, outcome, samples)
            for write in plan.writes:
                current = plan.current.get(write.record_id or "", {})
                verdict = "create" if write.kind in ("create", "upsert") and not write.record_id else write.kind
                if verdict == "update" and not write.values:
                    verdict = "skip"
                    report.reasons["skip: NOTHING_TO_CHANGE"] += len(write.ops)
                report.totals[verdict] += len(write.ops)
                if len(report.samples) < samples:
                    changes = {k: {"from": current.get(k), "to": v} for k, v in write.values.items()}
                    report.samples.append(Sample(write.ops[0].event.message_id, write.ops[0].action, write.object,
                                                 verdict, write.record_id, changes))
    return report


def _count_outcome(report: PreviewReport, outcome: Outcome, samples: int) -> None:
    verdict = "fail" if outcome.status is Status.FAILED else "skip"
    report.totals[verdict] += 1
    why = outcome.error_code if outcome.status is Status.FAILED else (outcome.reason or "").split(":")[0]
    report.reasons[f"{verdict}: {why}"] += 1
    if len(report.samples) < samples:
        report.samples.append(Sample(outcome.event.message_id, outcome.action or "", outcome.object or "", verdict,
                                     outcome.record_id, reason=outcome.message or outcome.reason))
