"""The ownership rule (sync/ownership.py) and HubSpot's history sources, table by table."""

from __future__ import annotations

import pytest

from crmsync.connectors.hubspot.history import classify
from crmsync.state.model import ChangeKind
from crmsync.sync.ownership import Decision, Record, digest, parse, render, sign

S = Decision.SAME
W = Decision.WRITE
C = Decision.CONFLICT
L = Decision.LEAVE


def signed(obj: str = "accounts", **values) -> Record:
    return Record.of({"signature": sign(obj, values)})


@pytest.mark.parametrize(
    ("record", "name", "wanted", "held", "decision"),
    [
        # the CRM already holds it (numbers as each CRM echoes them)
        (Record(), "coverage_score", 55, "55", S),
        (Record(), "stakeholders", 4, 4.0, S),
        # a blank field is free
        (Record(), "coverage_status", "amber", None, W),
        (Record(), "reason", "Quiet.", "  ", W),
        # a value nobody can show crmsync wrote is someone else's
        (Record(), "coverage_status", "amber", "green", C),
        (Record(), "status", "departed", "ok", C),
        # ... unless crmsync only wants it empty: left alone, no conflict
        (Record(), "reason", None, "Key sponsor", L),
        # the signature vouches for exactly the value crmsync wrote
        (signed(coverage_status="green"), "coverage_status", "amber", "green", W),
        (signed(coverage_status="green"), "coverage_status", "amber", "Green", W),
        (signed(coverage_score=40), "coverage_score", 55, "40", W),
        (signed(roles_covered="Champion; Economic Buyer"), "roles_covered", "Champion",
         "Economic Buyer;Champion", W),
        (signed(coverage_status="green"), "coverage_status", "amber", "red", C),
        # a task's status as each CRM spells it
        (signed("tasks", status="completed"), "status", "open", "Completed", W),
        (signed("tasks", status="open"), "status", "completed", "NOT_STARTED", W),
        # the mirror's record of crmsync's writes bridges installs from before signatures
        (Record(written={"coverage_status": "green"}), "coverage_status", "amber", "green", W),
        (Record(written={"coverage_status": "green"}), "coverage_status", "amber", "red", C),
        # a signature entry wins over the bridge
        (Record(signature=parse(sign("accounts", {"coverage_status": "red"})),
                written={"coverage_status": "green"}), "coverage_status", "amber", "green", C),
        # handed back, or the guard turned off
        (Record(handed_back=frozenset({"coverage_status"})), "coverage_status", "amber", "green", W),
        (Record(guard=False), "coverage_status", "amber", "green", W),
    ],
)
def test_who_owns_a_value(record: Record, name: str, wanted, held, decision: Decision) -> None:
    assert record.decide(name, wanted, held) is decision


def test_signature_round_trips_and_ignores_what_it_cannot_read() -> None:
    text = render({"status": digest("status", "stale"), "reason": digest("reason", "Quiet.")})
    assert text.startswith("v1 reason=") and len(text) < 40
    assert parse(text) == {"status": digest("status", "stale"), "reason": digest("reason", "Quiet.")}
    assert parse("v2 status=12345678") == {} and parse(None) == {} and parse("") == {}
    assert parse("v1 status=nothex! reason=1234abcd") == {"reason": "1234abcd"}
    # blank values are never claimed: they are free anyway
    assert sign("contacts", {"status": "ok", "reason": None}) == render({"status": digest("status", "ok")})


def test_the_next_signature_keeps_only_what_crmsync_can_still_show() -> None:
    current = {
        "coverage_status": "red",  # a person changed crmsync's "green"
        "coverage_score": "40",  # crmsync's
        "engaged": "7",  # nobody's crmsync knows of
        "signature": sign("accounts", {"coverage_status": "green", "coverage_score": 40}),
    }
    after = Record.of(current).after("accounts", current, {"stakeholders": 5})
    assert parse(after) == {
        "stakeholders": digest("stakeholders", 5), "coverage_score": digest("coverage_score", 40),
    }  # fmt: skip
    # an install from before signatures: the first write signs what the mirror says crmsync wrote
    bridge = Record.of({}, written={"engaged": "7", "coverage_status": "amber"})
    after = bridge.after("accounts", {"engaged": 7.0, "coverage_status": "red"}, {"stakeholders": 5})
    assert parse(after) == {"stakeholders": digest("stakeholders", 5), "engaged": digest("engaged", 7)}


def test_an_account_signature_fits_salesforces_text_255() -> None:
    text = sign("accounts", {
        "stakeholders": 12, "engaged": 4, "roles_covered": "Champion; Economic Buyer",
        "coverage_score": 55, "coverage_status": "amber", "hygiene_summary": "x" * 5000,
    })  # fmt: skip
    assert len(text) <= 255


@pytest.mark.parametrize(
    ("entry", "own", "kind", "user"),
    [
        ({"sourceType": "CRM_UI", "sourceId": "userId:28604240", "updatedByUserId": 28604240}, None,
         ChangeKind.PERSON, "28604240"),
        ({"sourceType": "CRM_UI_BULK_ACTION", "sourceId": "userId:7"}, None, ChangeKind.PERSON, "7"),
        ({"sourceType": "MOBILE_ANDROID", "updatedByUserId": 8}, None, ChangeKind.PERSON, "8"),
        ({"sourceType": "AUTOMATION_PLATFORM", "sourceId": "90001"}, None, ChangeKind.WORKFLOW, None),
        ({"sourceType": "WORKFLOWS"}, None, ChangeKind.WORKFLOW, None),
        ({"sourceType": "INTEGRATION", "sourceId": "8151242"}, "4201337", ChangeKind.INTEGRATION, None),
        ({"sourceType": "INTEGRATION", "sourceId": "4201337"}, "4201337", ChangeKind.CRMSYNC, None),
        ({"sourceType": "INTEGRATION", "sourceId": "4201337"}, None, ChangeKind.INTEGRATION, None),
        ({"sourceType": "IMPORT", "sourceId": "31337"}, None, ChangeKind.IMPORT, None),
        ({"sourceType": "SALESFORCE"}, None, ChangeKind.UNKNOWN, None),
        ({}, None, ChangeKind.UNKNOWN, None),
    ],
)
def test_hubspot_history_sources_say_who(entry, own, kind: ChangeKind, user) -> None:
    change = classify({"value": "x", "timestamp": "2022-11-07T21:54:03.930Z", **entry}, own)
    assert (change.kind, change.user_id) == (kind, user)
