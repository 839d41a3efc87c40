"""Suppression: the account manager's exemption field keeps findings quiet, not hidden.

A snoozed or exempt problem opens no task, but the account's hygiene summary and
coverage say it is set aside (and until when), coverage counts it as if it were
open, and the contact keeps its status with the reason saying why it is not
followed up. A snooze whose date cannot be read snoozes nothing and says so
(issue 11, "What was seen" 10).
"""

from __future__ import annotations

import re
from datetime import date

import pytest

from crmsync.rules import explain
from crmsync.rules.settings import SuppressionSettings
from crmsync.rules.suppression import Exemption, Kind, parse_date, read
from crmsync.state.model import CoverageStatus, HygieneStatus

from .builders import AS_OF, contact, days_ago, healthy_team, opp, role, run, settings, view

STALE = dict(last_activity_at=days_ago(500))
HINT = "write it as \u201csnooze until 31 January 2027\u201d, or with the date as 2027-01-31 or 31/01/2027"


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
        (
            "account snoozed, day first",
            None,
            "snooze until 30/06/2026",
            {"stale": True, "single": True},
        ),
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
    # status still states the fact; suppression only keeps tasks away, and the reason says so
    status = result.contact_status["003A"]
    assert status.status is HygieneStatus.DEPARTED
    assert status.reason.endswith(
        "Marked not a champion on this contact: not followed up as a departed champion."
    )
    f = next(f for f in result.flags if f.rule == "departed_champion")
    assert f.evidence["suppressed_because"] == "contact marked not a champion"


def test_not_a_champion_does_not_lower_coverage():
    """ "not a champion" corrects a fact: that person is no departed champion."""
    c = contact("003A", left_company=True, exemption="not a champion")
    v = view([c], opportunities=[opp()], roles=[role("003A", "Champion")])
    plain = view(
        [contact("003A", left_company=True)],
        opportunities=[opp()],
        roles=[role("003A", "Champion")],
    )
    assert run(v).coverage.score == run(plain).coverage.score + 10


def test_not_a_champion_wins_over_an_account_snooze():
    c = contact("003A", left_company=True, exemption="not a champion")
    v = view(
        [c], opportunities=[opp()], roles=[role("003A", "Champion")],
        exemption="snooze until 2027-01-31",
    )  # fmt: skip
    result = run(v)
    f = next(f for f in result.flags if f.rule == "departed_champion")
    assert f.evidence["suppressed_because"] == "contact marked not a champion"
    assert "departed champion" not in result.hygiene_summary  # not a problem set aside


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


# ---------------------------------------------------------------- what the account manager reads


# A growth account with one departed champion (003D), two stale contacts (003S1,
# 003S2) and one engaged Economic Buyer (003T0): single-threaded too.
def troubled(exemption=None, **contact_ex):
    return view(
        [
            contact("003D", first_name="Dana", last_name="Gone", left_company=True,
                    exemption=contact_ex.get("d")),
            contact("003S1", first_name="Sam", last_name="Still", exemption=contact_ex.get("s1"),
                    **STALE),
            contact("003S2", first_name="Sue", last_name="Silent", **STALE),
            contact("003T0", first_name="Tom", last_name="Buyer"),
        ],
        opportunities=[opp()],
        roles=[role("003D", "Champion"), role("003T0", "Economic Buyer")],
        exemption=exemption,
    )  # fmt: skip


OPEN = "1 departed champion, 2 stale contacts; relies on too few people."


@pytest.mark.parametrize(
    ("case", "account_ex", "summary"),
    [
        ("nothing set", None, OPEN),
        (
            "snoozed",
            "snooze until 31/01/2027",
            "Snoozed until 31 January 2027 by the account team: 1 departed champion, 2 stale "
            "contacts and reliance on too few people are not followed up until then.",
        ),
        (
            "exempt",
            "Exempt",
            "Exempt from hygiene checks: 1 departed champion, 2 stale contacts and reliance on "
            "too few people are not followed up.",
        ),
        (
            "exempt from one check",
            "stale",
            "1 departed champion; relies on too few people. Exempt from the check for stale "
            "contacts: 2 stale contacts are not followed up.",
        ),
        (
            "exempt from two checks",
            "stale; departed",
            "Relies on too few people. Exempt from the check for departed champions: 1 departed "
            "champion is not followed up. Exempt from the check for stale contacts: 2 stale "
            "contacts are not followed up.",
        ),
        (
            "snooze that has ended",
            "snooze until 2026-04-30",
            OPEN,
        ),
        (
            "snooze date that cannot be read",
            "snooze until next quarter",
            f"{OPEN} The snooze in \u201csnooze until next quarter\u201d could not be read, so the "
            f"account is not snoozed: {HINT}.",
        ),
        (
            "snooze without 'until'",
            "snooze 31/01/2027",
            f"{OPEN} The snooze in \u201csnooze 31/01/2027\u201d could not be read, so the "
            f"account is not snoozed: {HINT}.",
        ),
    ],
)
def test_account_summary_names_the_snooze_or_exemption(case, account_ex, summary):
    assert run(troubled(account_ex)).hygiene_summary == summary, case


@pytest.mark.parametrize(
    ("account_ex", "summary"),
    [
        (
            "snooze until 2027-01-31",
            "Snoozed until 31 January 2027 by the account team; no hygiene issues found.",
        ),
        ("exempt", "Exempt from hygiene checks; no hygiene issues found."),
        ("stale", "No open hygiene issues. Exempt from the check for stale contacts."),
        (None, "No open hygiene issues."),
    ],
)
def test_a_healthy_snoozed_or_exempt_account_still_says_so(account_ex, summary):
    v = view(healthy_team(3), opportunities=[opp()], roles=[
        role("003T0", "Economic Buyer"), role("003T1", "Champion")], exemption=account_ex)  # fmt: skip
    assert run(v).hygiene_summary == summary


@pytest.mark.parametrize(
    ("case", "account_ex", "contact_ex", "note"),
    [
        (
            "account snoozed",
            "snooze until 31 Jan 2027",
            {},
            "Snoozed until 31 January 2027 by the account team: not followed up until then.",
        ),
        (
            "account exempt",
            "exempt",
            {},
            "The account is exempt from hygiene checks: not followed up.",
        ),
        (
            "account exempt from stale",
            "stale_contact",
            {},
            "The account is exempt from the check for stale contacts: not followed up.",
        ),
        (
            "contact snoozed",
            None,
            {"s1": "snooze until January 31, 2027"},
            "Snoozed until 31 January 2027 on this contact: not followed up until then.",
        ),
        (
            "contact exempt",
            None,
            {"s1": "yes"},
            "Exempt from hygiene checks on this contact: not followed up.",
        ),
        (
            "contact exempt from stale",
            None,
            {"s1": "stale"},
            "Exempt from the check for stale contacts on this contact: not followed up.",
        ),
    ],
)
def test_a_set_aside_contact_keeps_its_status_and_the_reason_says_why(
    case, account_ex, contact_ex, note
):
    result = run(troubled(account_ex, **contact_ex))
    stale = result.contact_status["003S1"]
    assert stale.status is HygieneStatus.STALE, case
    assert stale.reason == f"Sam Still has no logged activity since 17 December 2024. {note}"


def test_a_snoozed_accounts_departed_champion_still_reads_departed():
    result = run(troubled("snooze until 31.01.2027"))
    gone = result.contact_status["003D"]
    assert gone.status is HygieneStatus.DEPARTED
    assert gone.reason.endswith(
        "Snoozed until 31 January 2027 by the account team: not followed up until then."
    )
    assert all(f.suppressed for f in result.flags)  # no task for any of it


def test_contact_level_snoozes_are_counted_in_the_summary():
    result = run(troubled(s1="snooze until 2027-01-31", d="exempt"))
    assert result.hygiene_summary == (
        "1 stale contact; relies on too few people. Snoozed or exempt on their contact records: "
        "1 departed champion and 1 stale contact are not followed up."
    )
    result = run(troubled(s1="snooze until 2027-01-31"))
    assert result.hygiene_summary == (
        "1 departed champion, 1 stale contact; relies on too few people. Snoozed on the contact "
        "record: 1 stale contact is not followed up."
    )


@pytest.mark.parametrize(
    ("case", "exemption"),
    [
        ("nothing set", None),
        ("snoozed", "snooze until 2027-01-31"),
        ("exempt", "exempt"),
        ("exempt from departed", "departed"),
        ("exempt from single threaded", "single threaded"),
    ],
)
def test_coverage_counts_snoozed_and_exempt_problems_as_open(case, exemption):
    plain = run(troubled()).coverage
    cov = run(troubled(exemption)).coverage
    assert (cov.stakeholders, cov.engaged, cov.roles_covered, cov.score, cov.status) == (
        plain.stakeholders,
        plain.engaged,
        plain.roles_covered,
        plain.score,
        plain.status,
    ), case
    # one engaged of three, Economic Buyer of two roles, recent activity, a champion gone
    assert (cov.score, cov.status) == (48, CoverageStatus.AMBER)


def test_a_contact_snoozed_departed_champion_still_lowers_coverage():
    assert run(troubled(d="snooze until 2027-01-31")).coverage.score == 48
    assert run(troubled(d="exempt")).coverage.score == 48


@pytest.mark.parametrize(
    ("exemption", "ending"),
    [
        (None, "score 48 (amber)."),
        (
            "snooze until 31/01/2027",
            "score 48 (amber). Snoozed until 31 January 2027 by the account team; the score "
            "still counts what is snoozed.",
        ),
        (
            "exempt",
            "score 48 (amber). Exempt from hygiene checks; the score still counts what is exempt.",
        ),
        (
            "stale; single threaded",
            "score 48 (amber). Exempt from the check for stale contacts and the check for enough "
            "people and roles; the score still counts it.",
        ),
        ("snooze until next quarter", "score 48 (amber)."),
    ],
)
def test_coverage_summary_says_the_account_is_snoozed_or_exempt(exemption, ending):
    assert run(troubled(exemption)).coverage.summary.endswith(ending)


# ---------------------------------------------------------------- snoozes that cannot be read


def test_an_unreadable_contact_snooze_is_told_in_its_reason_and_the_summary():
    result = run(troubled(s1="Snooze until next quarter"))
    assert not by_rule(result)[("stale_contact", "003S1")]  # nothing snoozed
    assert result.contact_status["003S1"].reason == (
        "Sam Still has no logged activity since 17 December 2024. The snooze in \u201cSnooze "
        f"until next quarter\u201d could not be read, so this contact is not snoozed: {HINT}."
    )
    assert result.hygiene_summary == (
        f"{OPEN} The snooze on the record of Sam Still could not be read, so that contact is not "
        f"snoozed: {HINT}."
    )


def test_an_unreadable_snooze_on_a_contact_without_a_status_is_told_in_the_summary():
    team = healthy_team(3)
    team[0] = contact("003T0", first_name="Ann", last_name="Able", exemption="snooze until 31 Jan")
    team[1] = contact("003T1", first_name="Bo", last_name="Bell", exemption="snooze until 01/31/27")
    v = view(team, opportunities=[opp()], roles=[
        role("003T0", "Economic Buyer"), role("003T1", "Champion")])  # fmt: skip
    result = run(v)
    assert result.contact_status["003T0"].reason == ""  # ok contacts carry no reason
    assert result.hygiene_summary == (
        "No open hygiene issues. The snoozes on the records of Ann Able and Bo Bell could not be "
        f"read, so those contacts are not snoozed: {HINT}."
    )


def test_the_formats_hint_follows_the_date_order():
    s = settings(suppression={"date_order": "month_first"})
    summary = run(troubled("snooze until later"), s).hygiene_summary
    assert summary.endswith("or with the date as 2027-01-31 or 01/31/2027.")


# ---------------------------------------------------------------- dates


JAN_31 = date(2027, 1, 31)


@pytest.mark.parametrize(
    ("text", "date_order", "expected"),
    [
        ("2027-01-31", "day_first", JAN_31),
        ("2027-01-31", "month_first", JAN_31),
        ("2027-1-2", "day_first", date(2027, 1, 2)),  # year first: always year-month-day
        ("2027/01/02", "day_first", date(2027, 1, 2)),
        ("31/01/2027", "day_first", JAN_31),
        ("31/01/2027", "month_first", JAN_31),  # 31 cannot be a month
        ("31.01.2027", "day_first", JAN_31),
        ("31-01-2027", "day_first", JAN_31),
        ("01/31/2027", "day_first", JAN_31),  # 31 cannot be a month
        ("01/31/2027", "month_first", JAN_31),
        ("31 Jan 2027", "day_first", JAN_31),
        ("31 january 2027", "day_first", JAN_31),
        ("January 31, 2027", "day_first", JAN_31),
        ("Jan 31 2027", "month_first", JAN_31),
        ("31 Jan 2027.", "day_first", JAN_31),
        (": 31 Jan 2027", "day_first", JAN_31),
        ("01/02/2027", "day_first", date(2027, 2, 1)),  # ambiguous: the setting decides
        ("01/02/2027", "month_first", date(2027, 1, 2)),
        ("01.02.2027", "day_first", date(2027, 2, 1)),
        ("01.02.2027", "month_first", date(2027, 1, 2)),
        # cannot be read without guessing: None
        ("next quarter", "day_first", None),
        ("31/01/27", "day_first", None),  # two-digit year
        ("31 Jan", "day_first", None),  # no year
        ("Jan 2027", "day_first", None),  # no day
        ("2027", "day_first", None),
        ("2027-02-30", "day_first", None),
        ("13/13/2027", "day_first", None),
        ("end of January 2027", "day_first", None),
        ("", "day_first", None),
    ],
)
def test_snooze_dates(text, date_order, expected):
    assert parse_date(text, date_order) == expected


@pytest.mark.parametrize(
    "written",
    [
        "2027-01-31",
        "31/01/2027",
        "31.01.2027",
        "01/31/2027",
        "31 Jan 2027",
        "January 31, 2027",
        "Jan 31 2027",
    ],
)
def test_every_common_date_format_snoozes_the_account(written):
    result = run(troubled(f"snooze until {written}"))
    assert all(f.suppressed for f in result.flags)
    assert result.hygiene_summary.startswith("Snoozed until 31 January 2027 by the account team:")


def test_an_ambiguous_date_follows_date_order_and_is_spelled_out():
    day_first = run(troubled("snooze until 01/02/2027")).hygiene_summary
    month_first = run(
        troubled("snooze until 01/02/2027"), settings(suppression={"date_order": "month_first"})
    ).hygiene_summary
    assert day_first.startswith("Snoozed until 1 February 2027 ")
    assert month_first.startswith("Snoozed until 2 January 2027 ")


def test_date_order_must_be_day_first_or_month_first():
    with pytest.raises(ValueError) as e:
        settings(suppression={"date_order": "dmy"})
    assert '[rules.suppression] date_order must be "day_first" or "month_first"' in str(e.value)


def test_reading_the_field():
    s = SuppressionSettings()
    today = date(2026, 5, 1)
    got = read("snooze until January 31, 2027, stale\nNot a champion; snooze until soon", s, today)
    assert got.rules == {
        "*": Exemption(Kind.SNOOZE, "*", JAN_31),
        "stale_contact": Exemption(Kind.EXEMPT, "stale_contact"),
        "departed_champion": Exemption(Kind.NOT_CHAMPION, "departed_champion"),
    }
    assert got.unreadable == ("snooze until soon",)
    assert read("snooze until 2026-5-9,\nstale", s, today).rules["*"].why() == (
        "snoozed until 2026-05-09"
    )
    assert read("exempt; snooze until 2027-01-31", s, today).rules["*"].kind is Kind.EXEMPT
    assert read("snooze until 2026-02-30", s, today).rules == {}
    assert read("", s, today).rules == {} and read(None, s, today).unreadable == ()


# ---------------------------------------------------------------- plain words


def _texts():
    cases = [
        troubled(e) for e in (None, "snooze until 2027-01-31", "exempt", "stale", "next quarter")
    ]
    cases += [troubled(s1="snooze until 2027-01-31", d="exempt"), troubled(s1="snooze until x")]
    for v in cases:
        r = run(v)
        yield r.hygiene_summary
        yield r.coverage.summary
        yield from (s.reason for s in r.contact_status.values() if s.reason)


@pytest.mark.parametrize("text", list(_texts()))
def test_summaries_and_reasons_use_no_internal_words(text):
    for word in explain.INTERNAL_WORDS:
        pattern = re.escape(word) if not word.isalpha() else rf"\b{re.escape(word)}s?\b"
        assert not re.search(pattern, text, re.IGNORECASE), (word, text)
    assert "\n" not in text and "  " not in text


def test_texts_do_not_change_from_day_to_day():
    from datetime import timedelta

    v = troubled("snooze until 2027-01-31", s1="snooze until later")
    a, b = run(v), run(v, as_of=AS_OF + timedelta(days=1))
    assert a.hygiene_summary == b.hygiene_summary
    assert a.contact_status == b.contact_status
