"""Single-threaded accounts: engaged contacts by tier, required roles, severity."""

from __future__ import annotations

import pytest

from crmsync.rules.single_threaded import Evidence
from crmsync.state.model import Severity

from .builders import (
    champions,
    contact,
    day_ago,
    days_ago,
    flags,
    healthy_team,
    lost,
    opp,
    role,
    run,
    settings,
    view,
    won,
)

RULE = "single_threaded_account"


def only(result):
    found = flags(result, RULE)
    assert len(found) <= 1
    return found[0] if found else None


def test_three_engaged_contacts_with_both_roles_is_fine():
    v = view(healthy_team(3), opportunities=[opp()], roles=champions())
    assert only(run(v)) is None


@pytest.mark.parametrize(
    ("case", "extra", "engaged"),
    [
        ("two engaged", [], 2),
        ("third is quiet (91 days)", [contact("003Q", last_activity_at=days_ago(91))], 2),
        (
            "third active exactly 90 days ago counts",
            [contact("003Q", last_activity_at=days_ago(90))],
            3,
        ),
        ("third is bouncing", [contact("003Q", email_bounced=True)], 2),
        ("third has left", [contact("003Q", title="Former VP")], 2),
        ("third never active", [contact("003Q", last_activity_at=None, created_at=days_ago(2))], 2),
        (
            "third is a shared mailbox (still a contact)",
            [contact("003Q", email="info@acme.com")],
            3,
        ),
    ],
)
def test_engaged_count(case, extra, engaged):
    v = view([*healthy_team(2), *extra], opportunities=[opp()], roles=champions())
    f = only(run(v))
    if engaged >= 3:
        assert f is None, case
    else:
        assert f is not None, case
        assert f.evidence["engaged_count"] == engaged
        assert f.evidence["missing_roles"] == []


@pytest.mark.parametrize(
    ("case", "opportunities", "roles", "missing"),
    [
        ("no roles at all", [opp()], [], ["Economic Buyer", "Champion"]),
        ("champion only", [opp()], [role("003T1", "Champion")], ["Economic Buyer"]),
        (
            "roles on a closed-lost opportunity only",
            [lost("006A")],
            [role("003T0", "Economic Buyer", "006A"), role("003T1", "Champion", "006A")],
            ["Economic Buyer", "Champion"],
        ),
        (
            "roles on a recent win",
            [won("006A", days=100)],
            [role("003T0", "Economic Buyer", "006A"), role("003T1", "Champion", "006A")],
            [],
        ),
        (
            "roles on an old win",
            [won("006A", days=400)],
            [role("003T0", "Economic Buyer", "006A"), role("003T1", "Champion", "006A")],
            ["Economic Buyer", "Champion"],
        ),
        (
            "buying roles on the contact (HubSpot's, as the connector names them)",
            [],
            [role("003T0", "Economic Buyer", None), role("003T1", "CHAMPION", None)],
            [],
        ),
        (
            "role held by a departed contact",
            [opp()],
            [role("003T0", "Economic Buyer"), role("003D", "Champion")],
            ["Champion"],
        ),
    ],
)
def test_required_roles(case, opportunities, roles, missing):
    cs = [*healthy_team(3), contact("003D", left_company=True)]
    f = only(run(view(cs, opportunities=opportunities, roles=roles)))
    if not missing:
        assert f is None, case
    else:
        assert f.evidence["missing_roles"] == missing, case
        assert f.evidence["engaged_count"] == 3
        ev = Evidence.of(f.evidence)  # what the task reads
        assert (ev.engaged_count, ev.missing_roles) == (3, tuple(missing)), case
        assert ev.min_engaged == f.evidence["min_engaged"] and isinstance(ev.min_engaged, int)


def test_explanation_lists_engaged_people_and_missing_roles():
    cs = [contact("003A", first_name="Ada", last_name="Byron", last_activity_at=days_ago(20))]
    f = only(run(view(cs, opportunities=[opp()], roles=[role("003A", "Champion")])))
    assert "Engaged in the last 90 days: Ada Byron." in f.explanation
    assert "11 April" not in f.explanation  # a task quoting it would change at each activity
    assert f.evidence["engaged"] == [{"contact_id": "003A", "last_activity_date": "2026-04-11"}]
    assert "1 engaged contact where at least 3 are expected" in f.explanation
    assert "nobody active holds the Economic Buyer role" in f.explanation
    assert f.subject_id == f.account_id == "001A" and f.contact_id is None


@pytest.mark.parametrize(
    ("tier", "close_in_days", "severity"),
    [
        ("Growth", 400, Severity.MEDIUM),
        ("Strategic", 400, Severity.HIGH),
        ("Growth", 120, Severity.HIGH),
        ("Growth", 121, Severity.MEDIUM),
        ("Strategic", 10, Severity.CRITICAL),
        ("Maintenance", -10, Severity.HIGH),
    ],
)
def test_severity_rises_for_strategic_and_renewal(tier, close_in_days, severity):
    v = view(
        healthy_team(1), opportunities=[opp("006A", close_date=day_ago(-close_in_days))], tier=tier
    )
    assert only(run(v)).severity is severity


def test_renewal_date_field_counts_as_renewal():
    v = view(healthy_team(1), renewal_date=day_ago(-50))
    f = only(run(v))
    assert f.severity is Severity.HIGH
    assert f.evidence["renewal_date"] == day_ago(-50).isoformat()
    assert "the renewal on 20 June 2026" in f.explanation


def test_past_renewal_date_does_not_count():
    assert only(run(view(healthy_team(1), renewal_date=day_ago(5)))).severity is Severity.MEDIUM


def test_settings_change_the_outcome():
    v = view(healthy_team(2), opportunities=[opp()], roles=champions())
    assert only(run(v)) is not None
    assert only(run(v, settings(single_threaded_account={"min_engaged": 2}))) is None
    by_tier = settings(single_threaded_account={"min_engaged_by_tier": {"growth": 2}})
    assert only(run(v, by_tier)) is None
    assert only(run(view(healthy_team(2), tier="Strategic"), by_tier)) is not None
    no_roles = settings(single_threaded_account={"required_roles": [], "min_engaged": 0})
    assert only(run(view([]), no_roles)) is None
    assert only(run(view(healthy_team(3)), settings(engaged_days=5))) is not None
