"""Per-field direction rules in the push direction: a field Salesforce owns is never written, merge rules
become the write policy, and an action that names an owned field fails validation with its place."""

from __future__ import annotations

import pytest

from destination.actions.loader import ConfigError, load_text
from destination.actions.model import Policy
from destination.events import Event
from destination.mapping import map_event
from destination.operations import RecordOp

SOURCE = """
source: app
actions:
  - name: contacts
    when: type = "identify"
    object: Contact
    operation: upsert
    match: {any: {Email: $.traits.email}}
    fields:
      LastName: {path: $.traits.last_name, policy: always}
      Title: $.traits.title
      Department: $.traits.department
      Phone: {path: $.traits.phone, policy: always}
    fields_from: {path: $.traits, allow: [Description]}
sync_back:
  kafka_topic: salesforce-changes
  objects:
    - object: Contact
      fields:
        Title: {as: title, direction: both, merge: most_recent}
        Department: {as: department, merge: salesforce_wins}
        Phone: {as: phone, direction: to_salesforce}
        LastName: {as: last_name, direction: to_salesforce, unless_blank: false}
        Description: {as: description, direction: from_salesforce}
"""


def _op() -> RecordOp:
    source = load_text(SOURCE, "app.yaml")
    event = Event("app", {"type": "identify", "messageId": "m1", "userId": "u1", "traits": {
        "email": "a@x.io", "last_name": "Ada", "title": "CTO", "department": "R&D", "phone": "",
        "Description": "from the app"}})
    op = map_event(source, source.actions[0], event)
    assert isinstance(op, RecordOp)
    return op


def test_merge_rules_become_the_push_policy_and_a_salesforce_owned_field_is_never_written() -> None:
    op = _op()
    policies = {name: value.policy for name, value in op.fields.items()}
    assert policies == {"LastName": Policy.ALWAYS, "Title": Policy.MOST_RECENT, "Department": Policy.SET_IF_EMPTY,
                        "Phone": Policy.SKIP_BLANK}
    assert "Description" not in op.fields
    assert any("Description is from_salesforce" in w for w in op.warnings)


def test_an_action_naming_a_salesforce_owned_field_fails_validation_at_its_line() -> None:
    text = SOURCE.replace("      Phone: {path: $.traits.phone, policy: always}\n",
                          "      Phone: {path: $.traits.phone, policy: always}\n      Description: $.traits.d\n")
    with pytest.raises(ConfigError) as caught:
        load_text(text, "app.yaml")
    problem = caught.value.problems[0]
    assert "Description" in problem.message and "from_salesforce" in problem.message
    assert problem.file == "app.yaml" and problem.line is not None


@pytest.mark.parametrize("broken, message", [
    ("  kafka_topic: salesforce-changes\n", "needs kafka_topic or http"),
    ("      fields:\n", "fields"),
])
def test_sync_back_without_a_destination_or_fields_is_refused(broken: str, message: str) -> None:
    text = SOURCE.replace(broken, "" if "kafka" in broken else "      fields: {}\n      other:\n")
    with pytest.raises(ConfigError) as caught:
        load_text(text, "app.yaml")
    assert any(message in p.message or message in p.path for p in caught.value.problems)


def _timed_op(title: str, timestamp: str) -> RecordOp:
    source = load_text(SOURCE, "app.yaml")
    event = Event("app", {"type": "identify", "messageId": f"m-{title}", "userId": "u1", "timestamp": timestamp,
                          "traits": {"email": "a@x.io", "last_name": "Ada", "title": title}})
    op = map_event(source, source.actions[0], event)
    assert isinstance(op, RecordOp)
    return op


OURS, PERSON = "0058c0000000001AAA", "0058c0000000004AAA"


@pytest.mark.parametrize("modified_by, written", [(PERSON, False), (OURS, True)])
def test_most_recent_weighs_a_persons_later_change_but_not_our_own_write(modified_by: str, written: bool) -> None:
    """An event from 10:00:05 arrives after a change made at 10:00:07. Made by a person, the change is newer
    and wins; made by our own write of an event from 10:00:03 (value_times), the event is newer and wins."""
    from datetime import UTC, datetime

    from destination.plan import plan_batch

    record = {"Id": "0038c0000000001AAA", "Email": "a@x.io", "LastName": "Ada", "Title": "Changed",
              "Department": None, "Phone": None, "LastModifiedDate": "2026-12-02T10:00:07.000+0000",
              "LastModifiedById": modified_by}
    ours = {record["Id"]: {"Title": datetime(2026, 12, 2, 10, 0, 3, tzinfo=UTC)}}
    plan = plan_batch([_timed_op("Late", "2026-12-02T10:00:05Z")], [record], ours, own_user=OURS)
    [write] = plan.writes
    assert ("Title" in write.values) is written


def test_the_two_way_sync_docs_example_loads_and_its_read_only_error_reads_as_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "two-way-sync.md").read_text()
    block = doc.split("## Configuration", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    env = {"WEB_APP_WRITE_KEY": "w", "SEGMENT_WRITE_KEY": "s"}
    source = load_text(block, "actions/web-app.yaml", env)
    rules = source.rules_for("Contact")
    assert (rules["title"].merge.value, rules["phone"].merge.value, rules["description"].direction.value) == (
        "most_recent", "salesforce_wins", "from_salesforce")
    broken = block.replace("      Phone: $.traits.phone\n", "      Phone: $.traits.phone\n      Description: $.x\n")
    with pytest.raises(ConfigError) as caught:
        load_text(broken, "actions/web-app.yaml", env)
    shown = str(caught.value.problems[0])
    documented = " ".join(doc.split("in the example above) fails `destination check`:", 1)[1]
                          .split("```", 2)[1].split())
    assert " ".join(shown.split()) == documented
