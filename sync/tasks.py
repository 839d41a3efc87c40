"""What a crmsync task says: subject, body and closing notes, for an account manager.

Three kinds of task land in the account owner's queue (docs/design.md "Write-back"):

- departed champion: one per open departed_champion flag. Who, what we saw,
  what to do, where the person now appears (a warm lead for a new logo), and who
  at the account could take the role, one a line (rules/successors.py).
- single-threaded account: one per open single_threaded_account flag.
- contact hygiene: one per account, grouping its stale and bouncing contacts.

The text is built only from the mirror and the flags, never from the clock, so
an unchanged account yields byte-identical text and the planner writes nothing
(RELIABILITY W10). Due date and priority are the lifecycle's (sync/lifecycle.py):
the due date is computed from `as_of` when a task is created and never
rewritten afterwards.

The words follow rules/explain.py: absolute dates, no internal jargon (no
"flag", "rule", API field names).

CRM values are hostile input (state/text.py): names, titles and account names
are quoted on one line at a bounded length with an ellipsis (a 10,000-character
job title stays a hundred characters here), and every field crmsync writes
stays within the shorter of the two CRMs' documented lengths: subject 255
(Salesforce Task.Subject), body 32,000 (Salesforce Task.Description; HubSpot
takes 65,536), a contact's reason and an account's hygiene summary 2,000 (far
below Salesforce's Crmsync_Reason__c / Crmsync_Hygiene_Summary__c, 32,768, and
HubSpot's 65,536). A longer value would get the whole record rejected.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from crmsync.rules import bouncing_contacts, departed_champions, single_threaded, stale_contacts
from crmsync.state.model import Confidence, Flag, TaskKey, Tier
from crmsync.state.text import ACCOUNT_MAX, NAME_MAX, TITLE_MAX, clip, fit

SUBJECT_MAX = 255  # Salesforce Task.Subject
BODY_MAX = 32_000  # Salesforce Task.Description (HubSpot hs_task_body: 65,536)
REASON_MAX = 2_000  # a contact's hygiene reason (one line)
SUMMARY_MAX = 2_000  # an account's hygiene summary
ROLES_MAX = 255  # an account's roles covered (Salesforce Crmsync_Roles_Covered__c)
LIST_MAX = 40  # contacts listed by name in one grouped task

# The rules whose findings become tasks (their NAME is the flag's `rule` and the task key's kind).
DEPARTED = departed_champions.NAME
SINGLE_THREADED = single_threaded.NAME
STALE = stale_contacts.NAME
BOUNCING = bouncing_contacts.NAME
HYGIENE = "contact_hygiene"  # the grouped task's own key kind (not a rule)

# Canonical task status values (the connectors map them: SF "Not Started"/"Completed",
# HubSpot NOT_STARTED/COMPLETED).
STATUS_OPEN = "open"
STATUS_COMPLETED = "completed"

FOOTER = (
    "This task is kept up to date automatically and closes itself once the records "
    "show the problem is fixed."
)


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Person:
    """A contact as a task names it."""

    id: str
    name: str
    title: str | None = None

    @property
    def quoted_name(self) -> str:
        """The name as crmsync's text quotes it (one line, at most NAME_MAX characters)."""
        return clip(self.name, NAME_MAX)

    @property
    def label(self) -> str:
        title = clip(self.title, TITLE_MAX)
        return f"{self.quoted_name} ({title})" if title else self.quoted_name


@dataclass(frozen=True)
class AccountFacts:
    """What a task says about its account."""

    crm: str
    id: str
    name: str
    tier: Tier
    owner_id: str | None
    stakeholders: int | None = None
    engaged: int | None = None
    roles_covered: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskContent:
    """A task's intended content. `key` is crmsync's key on the task (stable per problem)."""

    key: str
    kind: str  # DEPARTED | SINGLE_THREADED | HYGIENE
    account_id: str
    contact_id: str | None
    subject: str
    body: str
    rank: int  # lower first when the per-owner cap must choose


# ---------------------------------------------------------------- composition


def departed_task(flag: Flag, account: AccountFacts, person: Person | None) -> TaskContent:
    """One departed champion: who, what we saw, what to do, where they went."""
    name = person.quoted_name if person else f"contact {flag.subject_id}"
    company = _company(account.name)
    moved_to = moved_to_account(flag)
    confidence = Confidence(flag.confidence).value
    verb = {"high": "has left", "medium": "appears to have left"}.get(confidence, "may have left")
    subject = f"{name} {verb} {company}"
    if moved_to:
        subject += f" (now at {moved_to})"
    explanation, successors = _successors(flag)
    lines = [explanation or f"{name} shows signs of having left {company}."]
    if moved_to and moved_to not in explanation:
        lines += [
            "",
            f"{name} now appears at {moved_to}: someone who already knows you is a warm "
            "lead there.",
        ]
    lines += [*successors, "", FOOTER]
    rank = 0 if flag.severity.rank >= 3 else 1
    return TaskContent(
        key=flag.key,
        kind=DEPARTED,
        account_id=account.id,
        contact_id=flag.contact_id or flag.subject_id,
        subject=_cap(subject),
        body=_body(lines),
        rank=rank,
    )


def single_threaded_task(flag: Flag, account: AccountFacts) -> TaskContent:
    """One single-threaded account: how thin it is and how to widen it."""
    subject = f"Broaden the relationship at {_company(account.name)}"
    ev = single_threaded.Evidence.of(flag.evidence or {})
    engaged = ev.engaged_count if ev.engaged_count is not None else account.engaged
    target = ev.min_engaged
    missing = list(ev.missing_roles)
    gaps = []
    if isinstance(engaged, int) and (not isinstance(target, int) or engaged < target):
        gaps.append(_count(engaged, "engaged contact"))
    if missing:
        gaps.append(f"no {_listing(missing, 'or')}")
    if gaps:
        subject += ": " + ", ".join(gaps)
    explanation, successors = _successors(flag)
    lines = [explanation, *successors]
    if account.stakeholders is not None and account.engaged is not None:
        roles = ", ".join(account.roles_covered) if account.roles_covered else "no buying roles"
        lines += [
            "",
            f"Coverage today: {_count(account.stakeholders, 'active contact')}, "
            f"{account.engaged} engaged recently; roles covered: {roles}.",
        ]
    lines += ["", FOOTER]
    return TaskContent(
        key=flag.key,
        kind=SINGLE_THREADED,
        account_id=account.id,
        contact_id=None,
        subject=_cap(subject),
        body=_body(lines),
        rank=2 if account.tier is not Tier.STRATEGIC else 1,
    )


def hygiene_task(
    account: AccountFacts,
    stale: Sequence[tuple[Person, str]],
    bouncing: Sequence[tuple[Person, str]],
) -> TaskContent:
    """One task per account listing its bouncing and stale contacts with the reason for each."""
    n = len(stale) + len(bouncing)
    parts = []
    if bouncing:
        parts.append(f"{len(bouncing)} bouncing")
    if stale:
        parts.append(f"{len(stale)} without recent activity")
    company = _company(account.name)
    subject = f"Tidy up {_count(n, 'contact')} at {company}: {' and '.join(parts)}"
    lines = [f"Some contacts at {company} need attention before they mislead the team."]
    if bouncing:
        lines += ["", "Email bouncing:", *_people_lines(bouncing)]
    if stale:
        lines += ["", "No recent activity:", *_people_lines(stale)]
    steps = []
    if bouncing:
        steps.append("correct or remove the bouncing email addresses")
    if stale:
        steps.append("reach out to the quiet contacts, or mark the ones no longer involved as such")
    lines += ["", f"Suggested next step: {'; '.join(steps)}.", "", FOOTER]
    return TaskContent(
        key=str(TaskKey(HYGIENE, account.crm, account.id, account.id)),
        kind=HYGIENE,
        account_id=account.id,
        contact_id=None,
        subject=_cap(subject),
        body=_body(lines),
        rank=3,
    )


def completion_note(kind: str | None, as_of: datetime) -> str:
    """The line added to a task crmsync completes because its problem went away."""
    when = _day(as_of)
    why = {
        DEPARTED: "the contact no longer shows signs of having left",
        SINGLE_THREADED: "the account now has enough engaged contacts and its key roles are covered",
        HYGIENE: "none of the account's contacts are bouncing or inactive any more",
    }.get(kind or "", "the records no longer show the problem")
    return f"Closed automatically on {when}: {why}."


def with_note(body: str | None, note: str) -> str:
    """A task body with a closing line added; an old body cut so the note fits BODY_MAX."""
    if not body or not body.strip():
        return note
    return f"{fit(body.rstrip(), BODY_MAX - len(note) - 2)}\n\n{note}"


def completion_note_exempted(as_of: datetime) -> str:
    """The line added when an account manager exempted the problem in the CRM."""
    return f"Closed automatically on {_day(as_of)}: marked in the CRM as needing no action."


def completion_note_duplicate(as_of: datetime) -> str:
    """The line added to a second open task with the same key (left by an older crash)."""
    return f"Closed automatically on {_day(as_of)}: a duplicate of another open task."


def completion_note_gone(as_of: datetime) -> str:
    """The line added when the account (or contact) itself was deleted or merged away."""
    return (
        f"Closed automatically on {_day(as_of)}: the record this task was about no longer exists."
    )


# ---------------------------------------------------------------- small helpers


def moved_to_account(flag: Flag) -> str | None:
    """The name of the account a departed champion now appears at, if the flag names one."""
    name = departed_champions.Evidence.of(flag.evidence or {}).other_account_name
    return (_company(name) or None) if name else None


def _successors(flag: Flag) -> tuple[str, list[str]]:
    """The explanation without its suggestions, and the suggestions one person a line
    (rules/successors.py writes both into the evidence); the explanation as it is when the
    evidence has none."""
    explanation = _one_paragraph(flag.explanation)
    ev = flag.evidence or {}
    text = _one_paragraph(str(ev.get("successors_text") or ""))
    found = ev.get("successors")
    if not text or not isinstance(found, list) or not explanation.endswith(text):
        return explanation, []
    lines: list[str] = []
    for s in found:
        if isinstance(s, dict) and isinstance(s.get("lines"), list):
            lines += ["", *(_cap(str(line), 600) for line in s["lines"])]
    if not lines:
        return explanation, []
    return explanation[: -len(text)].rstrip(), lines


def _people_lines(people: Sequence[tuple[Person, str]]) -> list[str]:
    """One line per contact, at most LIST_MAX (a task body has a size limit: SF 32,000)."""
    lines = [
        f"- {p.label}: {_cap(_without_name(why, p.quoted_name), 300)}"
        for p, why in people[:LIST_MAX]
    ]
    if len(people) > LIST_MAX:
        lines.append(
            f"- and {len(people) - LIST_MAX} more: see the contacts' hygiene status on the account."
        )
    return lines


def _without_name(reason: str, name: str) -> str:
    """`Alan Turing has no activity...` -> `has no activity...` (the name leads the line already)."""
    text = _one_paragraph(reason)
    if name and text.startswith(name + " ") and len(text) > len(name) + 1:
        return text[len(name) + 1 :]
    return text


def _one_paragraph(text: str | None) -> str:
    return " ".join((text or "").split())


def _company(name: str | None) -> str:
    """An account name as a task quotes it (one line, at most ACCOUNT_MAX characters)."""
    return clip(name, ACCOUNT_MAX)


def _body(lines: Sequence[str]) -> str:
    return fit("\n".join(lines), BODY_MAX)


def _cap(text: str, limit: int = SUBJECT_MAX) -> str:
    text = _one_paragraph(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def _listing(items: Sequence[str], conjunction: str = "and") -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def _count(n: int, singular: str) -> str:
    return f"{n} {singular if n == 1 else singular + 's'}"


_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December",
)  # fmt: skip


def _day(value: date | datetime) -> str:
    d = value.date() if isinstance(value, datetime) else value
    return f"{d.day} {_MONTHS[d.month - 1]} {d.year}"


def sorted_people(items: Iterable[tuple[Person, str]]) -> list[tuple[Person, str]]:
    """Stable order for a task's contact list: by name, then id."""
    return sorted(items, key=lambda pw: (pw[0].name.lower(), pw[0].id))
