"""Task text for an account manager: stable, plain words, within the CRM's limits."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from crmsync.state.model import TaskKey, Tier
from crmsync.sync import tasks as T
from crmsync.sync.lifecycle import due_date, priority

from .fakes import CRM, departed, single_threaded

ACME = T.AccountFacts(
    crm="salesforce",
    id="001A",
    name="Acme",
    tier=Tier.GROWTH,
    owner_id="005A",
    stakeholders=2,
    engaged=1,
    roles_covered=(),
)


def test_departed_task_adds_where_they_went_when_the_explanation_does_not():
    flag = departed("001A", "003A1", moved_to="Globex")
    task = T.departed_task(flag, ACME, T.Person("003A1", "Ada Lovelace", "CTO"))
    assert task.subject == "Ada Lovelace has left Acme (now at Globex)"
    assert "Ada Lovelace now appears at Globex" in task.body
    assert task.body.endswith(T.FOOTER)


def test_task_text_is_the_same_every_day_for_the_same_facts():
    flag = single_threaded("001A")
    one = T.single_threaded_task(flag, ACME)
    two = T.single_threaded_task(flag, ACME)
    assert (one.subject, one.body) == (two.subject, two.body)
    for word in ("flag", "rule", "crmsync", "__c"):
        assert word not in (one.subject + one.body).lower()


def test_subject_fits_salesforce_255_characters():
    long_name = T.AccountFacts(
        crm="salesforce", id="001A", name="A" * 400, tier=Tier.NONE, owner_id=None
    )
    task = T.hygiene_task(long_name, [(T.Person("003", "Pat Doe"), "Quiet.")], [])
    # The account name is quoted at 120 characters (state/text.py), so the subject keeps
    # what the task is about instead of being cut at 255 in the middle of the name.
    assert len(task.subject) <= 255
    assert "A" * 119 + "\u2026: 1 without recent activity" in task.subject


def test_completion_note_says_why_with_an_absolute_date():
    at = datetime(2026, 3, 3, 12, tzinfo=UTC)
    assert T.completion_note(T.HYGIENE, at) == (
        "Closed automatically on 3 March 2026: none of the account's contacts are bouncing "
        "or inactive any more."
    )


def test_due_date_and_priority_by_tier():
    at = datetime(2026, 11, 23, 23, 59, tzinfo=UTC)
    assert due_date(at, Tier.MAINTENANCE, {"maintenance": 14}).isoformat() == "2026-12-07"
    assert priority(Tier.NONE, {"none": "normal"}) == "normal"


def test_keys_carry_their_account():
    stale = [(T.Person("003A2", "Alan Turing"), "Quiet.")]
    hygiene = TaskKey.parse(T.hygiene_task(replace(ACME, crm="hubspot", id="901"), stale, []).key)
    assert hygiene == TaskKey("contact_hygiene", "hubspot", "901", "901")
    assert TaskKey.parse(departed("001A", "003A1").key) == TaskKey(
        "departed_champion", CRM, "001A", "003A1"
    )
    assert TaskKey.parse("not a key") is None


def test_a_long_contact_list_is_cut_to_keep_the_body_within_crm_limits():
    people = [(T.Person(f"003{n:03d}", f"Pat {n:03d}"), "x" * 1000) for n in range(300)]
    task = T.hygiene_task(ACME, people, [])
    assert task.subject == "Tidy up 300 contacts at Acme: 300 without recent activity"
    assert "- and 260 more" in task.body and len(task.body) < 32_000


def test_successors_are_listed_one_a_line_and_not_twice():
    """The explanation ends with the suggestions (rules/successors.py); the task lists them."""
    tail = "Who could take the Champion role: Nadia North, \u201cVP Sales\u201d."
    flag = departed("001A", "003A1")
    flag = replace(
        flag,
        explanation=f"{flag.explanation} {tail}",
        evidence={
            **flag.evidence,
            "successors_text": tail,
            "successors": [{"lines": ["Who could take the Champion role:",
                                      "- Nadia North, \u201cVP Sales\u201d"]}],
        },
    )  # fmt: skip
    body = T.departed_task(flag, ACME, T.Person("003A1", "Ada Lovelace", "CTO")).body
    assert "\n\nWho could take the Champion role:\n- Nadia North, \u201cVP Sales\u201d\n\n" in body
    assert tail not in body
    # evidence that does not match the explanation (older flags): the explanation as it is
    stale = replace(flag, evidence={**flag.evidence, "successors_text": "something else"})
    body = T.departed_task(stale, ACME, T.Person("003A1", "Ada Lovelace", "CTO")).body
    assert tail in body and "\n- Nadia North" not in body
