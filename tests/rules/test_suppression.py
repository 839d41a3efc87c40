"""Suppression: the account manager's exemption field keeps findings quiet, not hidden."""

from __future__ import annotations

from datetime import date

import pytest

from rules.settings import SuppressionSettings, exemptions
from state.model import HygieneStatus

from .builders import AS_OF, contact, days_ago, opp, role, run, settings, view

STALE = dict(last_activity_at=days_ago(500))


def by_rule(result):
    return {(f.rule, f.subject_id): f.suppressed for f in result.flags}


@pytest.mark.parametrize(
    ("case", "contact_ex", "account_ex", "expected"),
    [
        ("nothing set", None, None, {"stale": False, "single": False}),
        ("contact exempt", "exempt", None, {"stale": True, "single": False}),
        ("contact 'all', any case", " ALL ", None, {"stale": True, "single": False}),
        ("contact exempt from stale only", "stale_contact", None, {"stale": True, "single": False}),
        ("contact alias", "stale", None, {"stale": True, "single": False}),
        (
            "contact exempt from another rule",
            "bouncing_contact",
            None,
            {"stale": False, "single": False},
        ),
        (
            "contact snoozed into the future",
            "snooze until 2026-05-02",
            None,
            {"stale": True, "single": False},
        ),
        (
            "contact snooze ends today",
            "snooze until 2026-05-01",
            None,
            {"stale": False, "single": False},
        ),
        (
            "contact snooze with bad date is ignored",
            "snooze until someday",
            None,
            {"stale": False, "single": False},
        ),
        ("unknown word is ignored", "please ignore", None, {"stale": False, "single": False}),
        ("account exempt covers its contacts", None, "true", {"stale": True, "single": True}),
        (
            "account exempt from one rule",
            None,
            "single_threaded_account",
            {"stale": False, "single": True},
        ),
        ("account snoozed", None, "Snooze until 2026-06-30", {"stale": True, "single": True}),
        ("several entries", "not a champion; stale", None, {"stale": True, "single": False}),
    ],
)
def test_exemption_values(case, contact_ex, account_ex, expected):
    v = view([contact("003A", exemption=contact_ex, **STALE)], exemption=account_ex)
    got = by_rule(run(v))
    assert got[("stale_contact", "003A")] is expected["stale"], case
    assert got[("single_threaded_account", "001A")] is expected["single"], case


def test_not_a_champion_suppresses_departed_champion_only():
    c = contact("003A", title="Former VP", exemption="Not a champion", **STALE)
    v = view([c], opportunities=[opp()], roles=[role("003A", "Champion")])
    result = run(v)
    got = by_rule(result)
    assert got[("departed_champion", "003A")] is True
    # status still states the fact; suppression only keeps tasks away
    assert result.contact_status["003A"].status is HygieneStatus.DEPARTED
    f = next(f for f in result.flags if f.rule == "departed_champion")
    assert f.evidence["suppressed_because"] == "contact marked not a champion"


def test_suppressed_departed_champion_does_not_lower_coverage():
    c = contact("003A", left_company=True, exemption="not a champion")
    v = view([c], opportunities=[opp()], roles=[role("003A", "Champion")])
    plain = view(
        [contact("003A", left_company=True)],
        opportunities=[opp()],
        roles=[role("003A", "Champion")],
    )
    assert run(v).coverage.score == run(plain).coverage.score + 10


def test_moved_contact_exemption_is_read_from_its_row():
    from .builders import change

    moved = contact("003M", account_id="001G", exemption="not a champion")
    v = view(
        [],
        opportunities=[opp()],
        roles=[role("003M", "Champion")],
        history=[change("003M", "account_id", "001A", "001G")],
        former=[moved],
    )
    assert by_rule(run(v))[("departed_champion", "003M")] is True


def test_suppression_words_are_settings():
    s = settings(suppression={"exempt_all_values": ["ignore me"], "snooze_prefix": "quiet until"})
    v = view(
        [
            contact("003A", exemption="Ignore me", **STALE),
            contact("003B", exemption="quiet until 2027-01-01", **STALE),
        ]
    )
    got = by_rule(run(v, s))
    assert got[("stale_contact", "003A")] and got[("stale_contact", "003B")]


def test_exemptions_parser():
    s = SuppressionSettings()
    assert exemptions("snooze until 2026-5-9,\nstale", s, date(2026, 5, 1)) == {
        "*": "snoozed until 2026-05-09",
        "stale_contact": "exempt from stale_contact",
    }
    assert exemptions("snooze until 2026-02-30", s, AS_OF.date()) == {}
    assert exemptions("", s, AS_OF.date()) == {}
