"""Stale contacts: tier windows and their edges (docs/design.md "stale_contact")."""

from __future__ import annotations

import pytest

from crmsync.state.model import Severity

from .builders import (
    AS_OF,
    contact,
    day_ago,
    days_ago,
    flagged_ids,
    flags,
    opp,
    role,
    run,
    settings,
    view,
)

RULE = "stale_contact"


@pytest.mark.parametrize(
    ("tier", "window"),
    [("Strategic", 60), ("Growth", 120), ("Maintenance", 365), (None, 180), ("Gold", 180)],
)
@pytest.mark.parametrize(
    ("last_activity_offset", "stale"),
    [
        (-1, False),  # a day inside the window
        (0, False),  # exactly on the window edge: still inside
        (1, True),  # a day outside the window
    ],
)
def test_window_by_tier_and_edge(tier, window, last_activity_offset, stale):
    # Activity late in the UTC day on the edge date still counts: whole days are compared.
    c = contact("003A", last_activity_at=days_ago(window + last_activity_offset).replace(hour=23))
    result = run(view([c], tier=tier))
    assert flagged_ids(result, RULE) == (["003A"] if stale else [])


@pytest.mark.parametrize(
    ("case", "kw", "stale"),
    [
        (
            "created yesterday, never active",
            dict(created_at=days_ago(1), last_activity_at=None),
            False,
        ),
        (
            "created on the window edge, never active",
            dict(created_at=days_ago(120), last_activity_at=None),
            False,
        ),
        (
            "created just before the window, never active",
            dict(created_at=days_ago(121), last_activity_at=None),
            True,
        ),
        (
            "no activity ever, created long ago",
            dict(created_at=days_ago(3000), last_activity_at=None),
            True,
        ),
        ("creation date unknown, never active", dict(created_at=None, last_activity_at=None), True),
        (
            "creation date unknown, recent activity",
            dict(created_at=None, last_activity_at=days_ago(3)),
            False,
        ),
        ("activity in the future (scheduled meeting)", dict(last_activity_at=days_ago(-5)), False),
    ],
)
def test_edge_cases(case, kw, stale):
    result = run(view([contact("003A", **kw)]))
    assert flagged_ids(result, RULE) == (["003A"] if stale else []), case


def test_bouncing_or_departed_contacts_are_not_reported_stale():
    old = dict(last_activity_at=days_ago(500))
    cs = [
        contact("003B", email_bounced=True, bounce_reason="550 5.1.1 user unknown", **old),
        contact("003D", title="Former CFO", **old),
        contact("003S", **old),
    ]
    assert flagged_ids(run(view(cs)), RULE) == ["003S"]


def test_changing_a_window_changes_the_outcome():
    c = contact("003A", last_activity_at=days_ago(100))
    assert flagged_ids(run(view([c])), RULE) == []
    tighter = settings(stale_contact={"growth_days": 90})
    assert flagged_ids(run(view([c]), tighter), RULE) == ["003A"]


def test_severity_rises_for_role_holders_and_renewal():
    stale = dict(last_activity_at=days_ago(200))
    plain = flags(run(view([contact("003A", **stale)])), RULE)[0]
    assert plain.severity is Severity.LOW
    v = view(
        [contact("003A", **stale)],
        opportunities=[opp("006A", close_date=day_ago(-30))],
        roles=[role("003A", "Champion")],
    )
    assert flags(run(v), RULE)[0].severity is Severity.HIGH


def test_evidence_holds_dates_and_window():
    c = contact("003A", last_activity_at=days_ago(200), created_at=days_ago(900))
    f = flags(run(view([c], tier="Strategic")), RULE)[0]
    assert f.evidence["last_activity_date"] == day_ago(200).isoformat()
    assert f.evidence["window_days"] == 60
    assert f.evidence["cutoff_date"] == day_ago(60).isoformat()
    assert f.evidence["tier"] == "strategic"
    assert f.contact_id == "003A" and f.subject_id == "003A" and f.account_id == "001A"
    assert "no logged activity since 13 October 2025" in f.explanation
    assert "every 60 days" in f.explanation
    assert AS_OF.year == 2026
