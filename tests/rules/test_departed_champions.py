"""Departed champions: every signal, role windows, confidence, moved contacts, leads."""

from __future__ import annotations

import pytest

from crmsync.rules.departed_champions import title_pattern
from crmsync.state.model import Confidence, HygieneStatus, Severity

from .builders import (
    change,
    contact,
    day_ago,
    days_ago,
    elsewhere,
    flags,
    lost,
    opp,
    role,
    run,
    settings,
    view,
    won,
)

RULE = "departed_champion"


def champion_view(c, *, extra_roles=(), **kw):
    return view(
        [c], opportunities=[opp("006A")], roles=[role(c.id, "Champion"), *extra_roles], **kw
    )


def only(result):
    found = flags(result, RULE)
    assert len(found) <= 1
    return found[0] if found else None


@pytest.mark.parametrize(
    ("case", "contact_kw", "view_kw", "signals", "confidence"),
    [
        (
            "left-company field",
            dict(left_company=True),
            {},
            ["left_company_field"],
            Confidence.MEDIUM,
        ),
        ("title Former", dict(title="Former VP Sales"), {}, ["title"], Confidence.LOW),
        ("title Ex-CTO", dict(title="Ex-CTO"), {}, ["title"], Confidence.LOW),
        ("title no longer with", dict(title="No longer with Acme"), {}, ["title"], Confidence.LOW),
        ("title left company", dict(title="Left company"), {}, ["title"], Confidence.LOW),
        (
            "hard bounce",
            dict(email_bounced=True, bounce_reason="5.1.1", bounced_at=days_ago(9)),
            {},
            ["email_bouncing"],
            Confidence.LOW,
        ),
        (
            "email moved to another domain",
            dict(email="ada@globex.com"),
            dict(history=[("email", "ada@acme.com", "ada@globex.com")]),
            ["email_domain_changed"],
            Confidence.MEDIUM,
        ),
        (
            "title and bounce agree",
            dict(title="Former CFO", email_bounced=True, bounce_reason="5.1.1"),
            {},
            ["title", "email_bouncing"],
            Confidence.HIGH,
        ),
        (
            "field and email agree",
            dict(left_company=True, email="ada@gmail.com"),
            dict(history=[("email", "ada@acme.com", "ada@gmail.com")]),
            ["left_company_field", "email_domain_changed"],
            Confidence.HIGH,
        ),
    ],
)
def test_signals_and_confidence(case, contact_kw, view_kw, signals, confidence):
    c = contact("003A", **contact_kw)
    history = [change("003A", *h) for h in view_kw.pop("history", [])]
    f = only(run(champion_view(c, history=history)))
    assert f is not None, case
    assert [s["kind"] for s in f.evidence["signals"]] == signals
    assert f.confidence is confidence


@pytest.mark.parametrize(
    "title",
    [
        "Leftwich Director",
        "Executive Sponsor",
        "Exec Assistant",
        "VP Sales",
        "Performer Relations",
        "Alex-Smith liaison",
        "CFO",
    ],
)
def test_titles_that_are_not_departures(title):
    assert only(run(champion_view(contact("003A", title=title)))) is None


@pytest.mark.parametrize(
    ("title", "hit"),
    [
        ("Former VP", True),
        ("former", True),
        ("EX-CTO", True),
        ("ex-cto", True),
        ("no  longer at Acme", True),
        ("Left", True),
        ("left company", True),
        ("Leftwich", False),
        ("Exec", False),
        ("Complex-Systems Lead", False),
        ("Formerly at Acme", False),
        ("Cleft Lead", False),
    ],
)
def test_title_pattern(title, hit):
    pattern = title_pattern(("former", "ex-", "no longer", "left"))
    assert bool(pattern.search(title)) is hit


def test_title_words_are_a_setting():
    c = contact("003A", title="Alumnus, was CFO")
    assert only(run(champion_view(c))) is None
    s = settings(departed_champion={"left_company_words": ["alumnus"]})
    assert only(run(champion_view(c), s)) is not None


@pytest.mark.parametrize(
    ("case", "opportunity", "counts"),
    [
        ("open opportunity", opp("006A"), True),
        ("won 30 days ago", won("006A", days=30), True),
        ("won exactly 365 days ago", won("006A", days=365), True),
        ("won 366 days ago", won("006A", days=366), False),
        ("closed lost only", lost("006A", days=10), False),
        ("won, no close date", won("006A", close_date=None), False),
    ],
)
def test_role_counts_only_on_open_or_recently_won_opportunities(case, opportunity, counts):
    c = contact("003A", left_company=True)
    v = view([c], opportunities=[opportunity], roles=[role("003A", "Champion", "006A")])
    assert (only(run(v)) is not None) is counts, case


def test_contact_level_role_counts_always():
    c = contact("003A", left_company=True)
    v = view([c], roles=[role("003A", "CHAMPION", None)])
    assert only(run(v)) is not None


def test_role_on_another_accounts_opportunity_does_not_count():
    c = contact("003A", left_company=True)
    v = view([c], opportunities=[opp("006A")], roles=[role("003A", "Champion", "006X")])
    assert only(run(v)) is None


@pytest.mark.parametrize(
    ("raw", "counts"),
    [
        ("Champion", True),
        ("champion", True),
        ("ECONOMIC BUYER", True),
        ("Executive Sponsor", True),
        ("BUDGET_HOLDER", True),
        ("EXECUTIVE_SPONSOR", True),
        ("DECISION_MAKER", True),
        ("END_USER;CHAMPION", True),
        ("Evaluator", False),
        ("Business User", False),
        (None, False),
        ("INFLUENCER", False),
    ],
)
def test_champion_roles_any_case_and_hubspot_codes(raw, counts):
    c = contact("003A", left_company=True)
    v = view([c], opportunities=[opp("006A")], roles=[role("003A", raw)])
    assert (only(run(v)) is not None) is counts


def test_champion_roles_are_a_setting():
    c = contact("003A", left_company=True)
    v = view([c], opportunities=[opp("006A")], roles=[role("003A", "Technical Buyer")])
    assert only(run(v)) is None
    s = settings(departed_champion={"champion_roles": ["technical buyer"]})
    assert only(run(v, s)) is not None


def test_moved_contact_is_reported_on_the_account_that_lost_them():
    moved = contact(
        "003M", account_id="001G", first_name="Mia", last_name="Moss", email="mia@globex.com"
    )
    v = view(
        [contact("003K")],
        opportunities=[opp("006A", name="Acme renewal")],
        roles=[role("003M", "Champion")],
        history=[
            change("003M", "account_id", "001A", "001G", seen=12),
            change("003M", "email", "mia@acme.com", "mia@globex.com", seen=12),
        ],
        elsewhere=[elsewhere("003M", "001G", "Globex", "moved")],
        former=[moved],
    )
    result = run(v)
    f = only(result)
    assert f.subject_id == "003M" and f.account_id == "001A" and f.contact_id == "003M"
    assert f.confidence is Confidence.HIGH
    assert f.evidence["moved_away"] is True
    assert f.evidence["other_account_id"] == "001G" and f.evidence["other_account_name"] == "Globex"
    assert "Mia Moss" in f.explanation
    assert "Now at Globex \u2014 a warm lead for a new logo." in f.explanation
    assert "the record moved to Globex (noticed 19 April 2026)" in f.explanation
    # The moved contact gets no status here (the account now holding them decides it).
    assert "003M" not in result.contact_status


def test_moved_contact_without_its_row_or_elsewhere_still_reported():
    v = view(
        [],
        opportunities=[opp("006A")],
        roles=[role("003M", "Economic Buyer")],
        history=[change("003M", "account_id", "001A", "001Z")],
    )
    f = only(run(v))
    assert f.evidence["other_account_id"] == "001Z"
    assert f.confidence is Confidence.MEDIUM


def test_contact_who_moved_in_is_not_departed():
    c = contact("003A")
    v = champion_view(c, history=[change("003A", "account_id", "001Z", "001A")])
    assert only(run(v)) is None


def test_contact_who_moved_away_and_back_is_not_departed():
    v = champion_view(
        contact("003A"),
        history=[
            change("003A", "account_id", "001A", "001G", seen=20),
            change("003A", "account_id", "001G", "001A", seen=10),
        ],
    )
    assert only(run(v)) is None


def test_email_changed_back_to_the_account_domain_is_not_a_signal():
    v = champion_view(
        contact("003A", email="ada@acme.com"),
        history=[
            change("003A", "email", "ada@acme.com", "ada@globex.com", seen=20),
            change("003A", "email", "ada@globex.com", "ada@acme.com", seen=10),
        ],
    )
    assert only(run(v)) is None


def test_email_within_account_subdomains_is_not_a_move():
    v = champion_view(
        contact("003A", email="ada@uk.acme.com"),
        history=[change("003A", "email", "ada@acme.com", "ada@uk.acme.com")],
        acct=None,
        domain="https://www.Acme.com/",
    )
    assert only(run(v)) is None


def test_same_name_elsewhere_corroborates_but_never_stands_alone():
    c = contact("003A")
    alone = champion_view(c, elsewhere=[elsewhere("003A", "001G", "Globex", "same_name", "003X")])
    result = run(alone)
    assert only(result) is None
    assert result.contact_status["003A"].status is HygieneStatus.OK
    assert result.coverage.stakeholders == 1
    titled = champion_view(
        contact("003A", title="Former CTO"),
        elsewhere=[elsewhere("003A", "001G", "Globex", "same_name", "003X")],
    )
    f = only(run(titled))
    assert f.confidence is Confidence.HIGH
    assert f.evidence["other_account_name"] == "Globex" and f.evidence["other_contact_id"] == "003X"
    assert "a warm lead for a new logo" in f.explanation


@pytest.mark.parametrize(
    ("tier", "renewal_days", "contact_kw", "severity"),
    [
        ("Growth", 400, dict(left_company=True), Severity.HIGH),
        ("Growth", 400, dict(title="Former CFO"), Severity.MEDIUM),
        ("Strategic", 400, dict(left_company=True), Severity.CRITICAL),
        ("Growth", 60, dict(left_company=True), Severity.CRITICAL),
        (
            "Strategic",
            60,
            dict(title="Former CFO"),
            Severity.HIGH,
        ),  # low confidence tops out at high
    ],
)
def test_severity(tier, renewal_days, contact_kw, severity):
    v = view(
        [contact("003A", **contact_kw)],
        opportunities=[opp("006A", close_date=day_ago(-renewal_days))],
        roles=[role("003A", "Champion")],
        tier=tier,
    )
    assert only(run(v)).severity is severity


def test_departed_non_champion_has_status_but_no_finding():
    cs = [
        contact("003A", title="Former VP"),
        contact("003B", left_company=True),
        contact("003C", email_bounced=True),
    ]
    result = run(view(cs))
    assert flags(result, RULE) == []
    status = result.contact_status
    assert status["003A"].status is HygieneStatus.DEPARTED
    assert status["003B"].status is HygieneStatus.DEPARTED
    assert status["003C"].status is HygieneStatus.BOUNCING  # bounce alone: not departed
    assert "may have left Acme" in status["003A"].reason
    assert result.coverage.stakeholders == 0


def test_bouncing_champion_is_departed():
    c = contact("003A", email_bounced=True, bounce_reason="5.1.1")
    result = run(champion_view(c))
    assert [f.rule for f in result.flags if f.contact_id == "003A"] == [
        "bouncing_contact",
        "departed_champion",
    ]
    assert result.contact_status["003A"].status is HygieneStatus.DEPARTED


@pytest.mark.parametrize(
    ("reason", "departed"),
    [
        ("UNKNOWN_USER", True),  # the address is gone: a sign the person left
        ("OTHER", False),  # bounced, no reason given: stops mail, says nothing of the person
        ("SPAM", False),  # a refusal of the message: the address may work
        ("MAILBOX_FULL", False),  # temporary
    ],
)
def test_only_a_gone_address_is_a_departure_sign(reason, departed):
    c = contact("003A", email_bounced=True, bounce_reason=reason)
    v = view([c], opportunities=[opp("006A")], roles=[role("003A", "Champion")])
    assert (only(run(v)) is not None) is departed
