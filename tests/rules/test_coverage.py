"""Coverage numbers, score weights and status thresholds."""

from __future__ import annotations

import pytest

from crmsync.rules import coverage
from crmsync.state.model import CoverageStatus

from .builders import champions, contact, days_ago, healthy_team, opp, role, run, settings, view


def test_healthy_account_scores_100_green():
    cov = run(view(healthy_team(3), opportunities=[opp()], roles=champions())).coverage
    assert (cov.stakeholders, cov.engaged, cov.roles_covered, cov.score, cov.status) == (
        3,
        3,
        ("Champion", "Economic Buyer"),
        100,
        CoverageStatus.GREEN,
    )
    assert cov.summary == (
        "3 stakeholders, 3 engaged in the last 90 days; roles covered: Champion, Economic Buyer; "
        "score 100 (green)."
    )


def test_empty_account_scores_10_red():
    # Nothing engaged, no roles, no activity; only "no departed champion" holds.
    cov = run(view([])).coverage
    assert (cov.stakeholders, cov.engaged, cov.score, cov.status) == (0, 0, 10, CoverageStatus.RED)
    assert "missing: Economic Buyer, Champion" in cov.summary


@pytest.mark.parametrize(
    ("case", "contacts", "roles", "score", "status"),
    [
        # engaged 2/3*40=26.67, roles 30, recency 20, champions 10 -> 86.67
        # ... but two engaged is below the target of three: never green (at most amber)
        ("two engaged, both roles", healthy_team(2), champions(), 87, CoverageStatus.AMBER),
        # engaged 40, roles 15, recency 20, champions 10 -> 85
        (
            "three engaged, one role",
            healthy_team(3),
            [role("003T1", "Champion")],
            85,
            CoverageStatus.AMBER,  # a required role is uncovered: never green
        ),
        # engaged 0, roles 30, recency: last activity 105 days ago, growth stale window 120 -> (120-105)/(120-90)=0.5 -> 10, champions 10 -> 50
        (
            "nobody engaged, latest activity half way to stale",
            [
                contact("003T0", last_activity_at=days_ago(105)),
                contact("003T1", last_activity_at=days_ago(200)),
            ],
            champions(),
            50,
            CoverageStatus.AMBER,
        ),
        # engaged 0, roles 30, recency 0, champions 10 -> 40
        (
            "nobody engaged, activity past the stale window",
            [
                contact("003T0", last_activity_at=days_ago(300)),
                contact("003T1", last_activity_at=days_ago(300)),
            ],
            champions(),
            40,
            CoverageStatus.AMBER,
        ),
        # departed champion: engaged 1/3 -> 13.33, roles: Economic Buyer only 15, recency 20, champions 0 -> 48
        (
            "champion left",
            [contact("003T0"), contact("003T1", left_company=True)],
            champions(),
            48,
            CoverageStatus.AMBER,
        ),
    ],
)
def test_score(case, contacts, roles, score, status):
    cov = run(view(contacts, opportunities=[opp()], roles=roles)).coverage
    assert (cov.score, cov.status) == (score, status), case


def test_departed_and_bouncing_are_not_stakeholders():
    cs = [*healthy_team(2), contact("003B", email_bounced=True), contact("003D", title="Ex-COO")]
    cov = run(view(cs)).coverage
    assert (cov.stakeholders, cov.engaged) == (2, 2)


def test_roles_of_inactive_contacts_are_not_covered():
    cs = [*healthy_team(1), contact("003B", email=None)]
    cov = run(view(cs, opportunities=[opp()], roles=[role("003B", "Champion")])).coverage
    assert cov.roles_covered == ()


def test_weights_and_thresholds_are_settings():
    v = view(healthy_team(2), opportunities=[opp()], roles=champions())
    s = settings(
        coverage={
            "engaged_weight": 100,
            "roles_weight": 0,
            "recency_weight": 0,
            "champions_weight": 0,
        }
    )
    assert run(v, s).coverage.score == 67
    s = settings(coverage={"green_min_score": 90, "amber_min_score": 60})
    assert run(v, s).coverage.status is CoverageStatus.AMBER
    # the engaged target follows the tier's minimum
    s = settings(single_threaded_account={"min_engaged": 2})
    assert run(v, s).coverage.score == 100


# ---------------------------------------------------------------- why, in words (the leader report)


def test_a_capped_score_says_it_is_held_at_amber_for_being_single_threaded():
    # engaged 2/3 -> 27 of 40 points, roles 30, recency 20, champions 10: 87, green by score
    b = run(view(healthy_team(2), opportunities=[opp()], roles=champions())).coverage_breakdown
    assert b is not None and b.capped_by == ("engaged",)
    assert coverage.explain_status(b) == (
        "Amber (score 87 of 100): capped at amber: single-threaded (2 engaged contacts where 3 "
        "are expected); the score alone would be green."
    )
    assert coverage.explain_parts(b) == [
        "Engaged contacts: 2 of 3 expected in the last 90 days (27 of 40 points)",
        "Buying roles: 2 of 2 required roles held (30 of 30 points)",
        "Recent activity: latest activity 10 days before the as-of date; full points within 90 "
        "days, none after 120 (20 of 20 points)",
        "Champions: no champion has left (10 of 10 points)",
    ]


def test_a_missing_role_and_a_departed_champion_are_named_as_the_cap():
    cs = [*healthy_team(3), contact("003X", left_company=True)]
    roles = [role("003T0", "Economic Buyer"), role("003X", "Champion")]
    b = run(view(cs, opportunities=[opp()], roles=roles)).coverage_breakdown
    assert b is not None and b.coverage.status is CoverageStatus.AMBER
    text = coverage.explain_status(b)
    assert "capped at amber: single-threaded (nobody active holds the Champion role)" in text
    assert "a champion has left" in text
    assert "missing: Champion" in coverage.explain_parts(b)[1]


def test_an_uncapped_status_is_just_the_status_and_score():
    b = run(view(healthy_team(3), opportunities=[opp()], roles=champions())).coverage_breakdown
    assert b is not None and b.capped_by == ()
    assert coverage.explain_status(b) == "Green (score 100 of 100)."
    b = run(view([])).coverage_breakdown
    assert b is not None and coverage.explain_status(b) == "Red (score 10 of 100)."
    assert coverage.explain_parts(b)[2].startswith("Recent activity: no logged activity")
