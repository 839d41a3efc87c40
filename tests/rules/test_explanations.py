"""Explanations: plain words, absolute dates, the person named, stable from day to day."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import pytest

from crmsync import rules
from crmsync.rules import explain

from .builders import AS_OF, zoo

ALL = [f for r in rules.evaluate_accounts(zoo(), rules.RuleSettings(), AS_OF) for f in r.flags]
ABSOLUTE_DATE = re.compile(
    r"\b\d{1,2} (January|February|March|April|May|June|July|August|September|October|November|December) \d{4}\b"
)
RELATIVE = re.compile(r"\b(ago|yesterday|today|tomorrow|last week|next week)\b", re.IGNORECASE)
ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


def ids(flag):
    return f"{flag.rule}:{flag.subject_id}"


@pytest.mark.parametrize("flag", ALL, ids=ids)
def test_no_internal_words(flag):
    for word in explain.INTERNAL_WORDS:
        pattern = re.escape(word) if not word.isalpha() else rf"\b{re.escape(word)}s?\b"
        assert not re.search(pattern, flag.explanation, re.IGNORECASE), (word, flag.explanation)


@pytest.mark.parametrize("flag", ALL, ids=ids)
def test_dates_are_absolute(flag):
    assert not RELATIVE.search(flag.explanation), flag.explanation
    assert not ISO_DATE.search(flag.explanation), flag.explanation


@pytest.mark.parametrize("flag", ALL, ids=ids)
def test_one_short_paragraph_with_a_next_step(flag):
    text = flag.explanation
    assert "\n" not in text and text.endswith(".") and len(text) < 900
    assert text.startswith(flag.evidence["summary"])
    assert "  " not in text


@pytest.mark.parametrize("flag", [f for f in ALL if f.contact_id], ids=ids)
def test_contact_findings_name_the_person(flag):
    v = next(v for v in zoo() if v.id == flag.account_id)
    people = {c.id: c.name for c in (*v.contacts, *v.former_contacts)}
    assert people[flag.contact_id] in flag.explanation


def test_dated_findings_carry_absolute_dates():
    dated = {
        "stale_contact:003A2": "2 December 2025",
        "bouncing_contact:003A5": "11 April 2026",
        "departed_champion:003M1": "19 April 2026",
    }
    by_id = {ids(f): f for f in ALL}
    for key, day in dated.items():
        assert day in by_id[key].explanation
        assert ABSOLUTE_DATE.search(by_id[key].explanation)


def test_text_is_identical_on_the_next_day_when_nothing_changed():
    tomorrow = {
        f.key: f.explanation
        for r in rules.evaluate_accounts(zoo(), rules.RuleSettings(), AS_OF + timedelta(days=1))
        for f in r.flags
    }
    for f in ALL:
        assert tomorrow[f.key] == f.explanation


@pytest.mark.parametrize(
    ("value", "text"),
    [(date(2026, 3, 3), "3 March 2026"), (datetime(2025, 12, 31, 23, 59), "31 December 2025")],
)
def test_day(value, text):
    assert explain.day(value) == text


def test_listing():
    assert explain.listing([]) == ""
    assert explain.listing(["a"]) == "a"
    assert explain.listing(["a", "b"]) == "a and b"
    assert explain.listing(["a", "b", "c"], "or") == "a, b or c"
