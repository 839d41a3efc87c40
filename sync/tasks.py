"""What a crmsync task says: subject, body, due date and priority, for an account manager.

Three kinds of task land in the account owner's queue (docs/design.md "Write-back"):

- departed champion: one per open departed_champion flag. Who, what we saw,
  what to do, and where the person now appears (a warm lead for a new logo).
- single-threaded account: one per open single_threaded_account flag.
- contact hygiene: one per account, grouping its stale and bouncing contacts.

The text is built only from the mirror and the flags, never from the clock, so
an unchanged account yields byte-identical text and the planner writes nothing
(RELIABILITY W10). The due date is the one exception: it is computed from
`as_of` when a task is created and never rewritten afterwards.

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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from crmsync.state.model import Flag, Tier
from crmsync.state.text import ACCOUNT_MAX, NAME_MAX, TITLE_MAX, clip, fit

SUBJECT_MAX = 255  # Salesforce Task.Subject
BODY_MAX = 32_000  # Salesforce Task.Description (HubSpot hs_task_body: 65,536)
REASON_MAX = 2_000  # a contact's hygiene reason (one line)
SUMMARY_MAX = 2_000  # an account's hygiene summary
ROLES_MAX = 255  # an account's roles covered (Salesforce Crmsync_Roles_Covered__c)
LIST_MAX = 40  # contacts listed by name in one grouped task

# Rule names (rules/<rule>.py NAME); matched loosely so a rename is noticed in tests,
# not by an account manager.
DEPARTED = "departed_champion"
SINGLE_THREADED = "single_threaded_account"
STALE = "stale_contact"
BOUNCING = "bouncing_contact"
HYGIENE = "contact_hygiene"  # the grouped task's own key prefix (not a rule)

# Canonical task status values (the connectors map them: SF "Not Started"/"Completed",
# HubSpot NOT_STARTED/COMPLETED).
STATUS_OPEN = "open"
STATUS_COMPLETED = "completed"

FOOTER = (
    "This task is kept up to date automatically and closes itself once the records "
    "show the problem is fixed."
)


def rule_kind(rule: str) -> str | None:
    """departed | single_threaded | stale | bouncing, from a rule name; None for others."""
    r = rule.lower()
    if "departed" in r:
        return DEPARTED
    if "single" in r:
        return SINGLE_THREADED
    if "stale" in r:
        return STALE
    if "bounc" in r:
        return BOUNCING
    return None


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


# ---------------------------------------------------------------- keys


def hygiene_key(crm: str, account_id: str) -> str:
    """The grouped stale/bouncing task's key; same shape as a flag key."""
    return f"{HYGIENE}:{crm}:{account_id}:{account_id}"


def account_of_key(key: str) -> str | None:
    """The account id inside a task key (`rule:crm:account:subject`)."""
    parts = key.split(":")
    return parts[2] if len(parts) >= 4 else None


# ---------------------------------------------------------------- due date, priority


def due_date(as_of: datetime, tier: Tier, due_days: Mapping[str, int]) -> date:
    return as_of.date() + timedelta(days=int(due_days.get(tier.value, due_days.get("none", 10))))


def priority(tier: Tier, priorities: Mapping[str, str]) -> str:
    return str(priorities.get(tier.value, priorities.get("none", "normal")))


# ---------------------------------------------------------------- composition


def departed_task(flag: Flag, account: AccountFacts, person: Person | None) -> TaskContent:
    """One departed champion: who, what we saw, what to do, where they went."""
    name = person.quoted_name if person else f"contact {flag.subject_id}"
    company = _company(account.name)
    moved_to = moved_to_account(flag)
    confidence = str(getattr(flag.confidence, "value", flag.confidence))
    verb = {"high": "has left", "medium": "appears to have left"}.get(confidence, "may have left")
    subject = f"{name} {verb} {company}"
    if moved_to:
        subject += f" (now at {moved_to})"
    explanation = _one_paragraph(flag.explanation)
    lines = [explanation or f"{name} shows signs of having left {company}."]
    if moved_to and moved_to not in explanation:
        lines += [
            "",
            f"{name} now appears at {moved_to}: someone who already knows you is a warm "
            "lead there.",
        ]
    lines += ["", FOOTER]
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
    ev = flag.evidence or {}
    engaged = ev.get("engaged_count", account.engaged)
    target = ev.get("min_engaged")
    missing = [str(r) for r in ev.get("missing_roles") or () if r]
    gaps = []
    if isinstance(engaged, int) and (not isinstance(target, int) or engaged < target):
        gaps.append(_count(engaged, "engaged contact"))
    if missing:
        gaps.append(f"no {_listing(missing, 'or')}")
    if gaps:
        subject += ": " + ", ".join(gaps)
    lines = [_one_paragraph(flag.explanation)]
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
        key=hygiene_key(account.crm, account.id),
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


def completion_note_gone(as_of: datetime) -> str:
    """The line added when the account (or contact) itself was deleted or merged away."""
    return (
        f"Closed automatically on {_day(as_of)}: the record this task was about no longer exists."
    )


# ---------------------------------------------------------------- small helpers


_MOVED_KEYS = (
    "moved_to",
    "moved_to_account",
    "moved_to_account_name",
    "now_at",
    "now_at_account",
    "other_account_name",
    "elsewhere",
)


def moved_to_account(flag: Flag) -> str | None:
    """The name of the account a departed champion now appears at, if the flag names one."""
    ev = flag.evidence or {}
    for key in _MOVED_KEYS:
        value = ev.get(key)
        name = _account_name(value)
        if name:
            return name
    return None


def _account_name(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return _company(value) or None
    if isinstance(value, Mapping):
        for k in ("other_account_name", "account_name", "name"):
            if isinstance(value.get(k), str) and value[k].strip():
                return _company(value[k]) or None
    if isinstance(value, list | tuple) and value:
        return _account_name(value[0])
    return None


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
