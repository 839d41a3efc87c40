"""Suppression: what an account manager types into the exemption field, and what it does.

The field (named per CRM by `exempt_field` in `[salesforce]` / `[hubspot]`; the
words are `[rules.suppression]` settings) holds one or more entries separated
by `;`, new lines, or `,` (a comma inside a date such as "January 31, 2027" does
not separate), any case:

- `snooze until <date>`: every check on the record is quiet until that day; it
  wakes up on the date itself. The date needs a four-digit year and may be
  written 2027-01-31, 31/01/2027, 31.01.2027, 01/31/2027, 31 Jan 2027,
  January 31, 2027 or Jan 31 2027. A numeric date whose first two numbers could
  both be the month (01/02/2027) is read by `date_order` (day first unless set
  to "month_first"); every text spells the date out in words ("1 February
  2027"), so how it was read is always visible. A year-first date is always
  year-month-day.
- `not a champion`: the contact is not a champion. This corrects a fact: the
  contact is never reported as a departed champion, and coverage does not count
  them as one.
- `exempt`, `all`, `true`, `yes`: every check on the record, for good.
- a check's name (`stale_contact`, `bouncing_contact`, `departed_champion`,
  `single_threaded_account`) or a short alias (`stale`, `bouncing`,
  `departed`, `single threaded`): that check only.

On an account an entry covers the account and all its contacts.

Suppression decides what is followed up, not what is true:

- a suppressed finding is still produced, marked suppressed: it opens no task
  (an open one is completed, saying why);
- the contact keeps its hygiene status (stale, bouncing, departed), and its
  reason says that it is snoozed or exempt and until when;
- coverage (stakeholders, score, status) is computed as if nothing were
  suppressed, except that a "not a champion" contact is no departed champion;
- the account's hygiene summary names the snooze or exemption and counts what
  it holds back ("Snoozed until 31 January 2027 by the account team: 2 stale
  contacts and 1 departed champion are not followed up until then.").

A snooze whose date cannot be read (`snooze until next quarter`, a two-digit
year, a missing day), or an entry that starts like a snooze but lacks the
prefix (`snooze 31/01/2027`), snoozes nothing, and says so: in the account's
hygiene summary (naming the contacts), and in the contact's reason when the
contact has a status, with the formats that work. Other unknown words are
ignored: a typo must not silence anything.

Pure: the date of the run comes in as `today`, never from the clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from dateutil import parser as dateparser

from . import explain
from .registry import RULE_ALIASES, RULE_NAMES
from .settings import ALL_RULES, SuppressionSettings


class Kind(StrEnum):
    SNOOZE = "snooze"
    EXEMPT = "exempt"
    NOT_CHAMPION = "not_champion"


@dataclass(frozen=True)
class Exemption:
    """One entry in force today: what it covers (a check's name, or "*") and until when."""

    kind: Kind
    rule: str
    until: date | None = None  # snoozes only

    def why(self) -> str:
        """The short tag stored with a suppressed finding ("snoozed until 2027-01-31")."""
        if self.kind is Kind.SNOOZE and self.until is not None:
            return f"snoozed until {self.until.isoformat()}"
        if self.kind is Kind.NOT_CHAMPION:
            return "marked not a champion"
        return "exempt" if self.rule == ALL_RULES else f"exempt from {self.rule}"


@dataclass(frozen=True)
class Entries:
    """What one exemption field's value says today."""

    rules: Mapping[str, Exemption] = field(default_factory=dict)  # check name or "*" -> entry
    unreadable: tuple[str, ...] = ()  # snooze entries that could not be read, as typed

    def covering(self, rule: str) -> Exemption | None:
        return self.rules.get(rule) or self.rules.get(ALL_RULES)


NOTHING = Entries()


@dataclass(frozen=True)
class Suppression:
    """Why one finding is suppressed: which entry, on the account's or the contact's record."""

    exemption: Exemption
    where: str  # "account" | "contact"

    def why(self) -> str:
        """The finding's `suppressed_because` evidence, e.g. "account snoozed until 2027-01-31"."""
        return f"{self.where} {self.exemption.why()}"

    @property
    def corrects_facts(self) -> bool:
        """ "not a champion" says the finding is wrong, rather than not to follow it up."""
        return self.exemption.kind is Kind.NOT_CHAMPION


# ---------------------------------------------------------------- reading the field

# `;` and new lines always separate; a comma only when no digit follows it, so that
# "January 31, 2027" stays one entry.
_SPLIT = re.compile(r"[;\n]|,(?!\s*\d)")
_SPACES = re.compile(r"\s+")


def read(value: str | None, settings: SuppressionSettings, today: date) -> Entries:
    """The entries of an exemption field's value in force on `today`."""
    if not value or not value.strip():
        return NOTHING
    out: dict[str, Exemption] = {}
    unreadable: list[str] = []
    prefix = _norm(settings.snooze_prefix)
    first_word = prefix.split(" ", 1)[0]
    not_champion = {_norm(v) for v in settings.not_champion_values}
    exempt_all = {_norm(v) for v in settings.exempt_all_values}
    for raw in _SPLIT.split(value):
        entry = _norm(raw)
        if not entry:
            continue
        if entry.startswith(prefix):
            until = parse_date(entry[len(prefix) :], settings.date_order)
            if until is None:
                unreadable.append(_SPACES.sub(" ", raw.strip()))
            elif today < until:
                out.setdefault(ALL_RULES, Exemption(Kind.SNOOZE, ALL_RULES, until))
        elif entry in not_champion:
            out.setdefault("departed_champion", Exemption(Kind.NOT_CHAMPION, "departed_champion"))
        elif entry in exempt_all:
            out[ALL_RULES] = Exemption(Kind.EXEMPT, ALL_RULES)
        elif (rule := RULE_ALIASES.get(entry, entry.replace(" ", "_"))) in RULE_NAMES:
            out.setdefault(rule, Exemption(Kind.EXEMPT, rule))
        elif entry.split(" ", 1)[0] == first_word:
            unreadable.append(_SPACES.sub(" ", raw.strip()))  # "snooze 31/01/2027"
    return Entries(out, tuple(unreadable))


def _norm(text: str) -> str:
    return _SPACES.sub(" ", text.strip().lower())


# ---------------------------------------------------------------- dates

_FOUR_DIGIT_YEAR = re.compile(r"(?<!\d)\d{4}(?!\d)")
_YEAR_FIRST = re.compile(r"^\d{4}\s*[-/.]")
# Two different defaults: a part the text leaves out (the day, the month) shows up
# as a difference between the two readings, and the date is refused rather than
# filled in from a default.
_DEFAULTS = (datetime(2000, 1, 1), datetime(2001, 2, 2))
DATE_ORDERS = ("day_first", "month_first")


def parse_date(text: str, date_order: str = "day_first") -> date | None:
    """The date in `text`, or None when it cannot be read without guessing.

    Uses python-dateutil's parser. Refused: no four-digit year (dateutil would
    choose the century from the clock), a missing day or month, anything
    dateutil cannot read. A year-first date is read year-month-day whatever
    `date_order` says (dateutil would otherwise read 2027-01-02 as 1 February).
    """
    text = text.strip().lstrip(":").strip().removesuffix(".")  # "snooze until: 31 Jan 2027."
    if not text or not _FOUR_DIGIT_YEAR.search(text):
        return None
    if _YEAR_FIRST.match(text):
        dayfirst, yearfirst = False, True
    else:
        dayfirst, yearfirst = date_order != "month_first", False
    readings = set()
    for default in _DEFAULTS:
        try:
            when = dateparser.parse(
                text, default=default, dayfirst=dayfirst, yearfirst=yearfirst, ignoretz=True
            )
        except (ValueError, OverflowError):
            return None
        readings.add(when.date())
    return readings.pop() if len(readings) == 1 else None


def formats_hint(settings: SuppressionSettings) -> str:
    """`write it as “snooze until 31 January 2027”, or with the date as 2027-01-31 or 31/01/2027`."""
    numeric = "01/31/2027" if settings.date_order == "month_first" else "31/01/2027"
    example = explain.quoted(f"{settings.snooze_prefix.strip()} 31 January 2027")
    return f"write it as {example}, or with the date as 2027-01-31 or {numeric}"


# ---------------------------------------------------------------- words for the CRM

# What a finding of each check is, counted, as the hygiene summary says it.
_ITEMS = {
    "departed_champion": ("departed champion", "departed champions"),
    "bouncing_contact": ("bouncing contact", "bouncing contacts"),
    "stale_contact": ("stale contact", "stale contacts"),
}
_SINGLE = "reliance on too few people"
CHECKS = {
    "stale_contact": "the check for stale contacts",
    "bouncing_contact": "the check for bouncing email addresses",
    "departed_champion": "the check for departed champions",
    "single_threaded_account": "the check for enough people and roles",
}


def held_back(counts: Mapping[str, int]) -> tuple[str, bool]:
    """("2 stale contacts and 1 departed champion", plural?) for findings by check name."""
    parts: list[str] = []
    plural = False
    for rule, (one, many) in _ITEMS.items():
        n = counts.get(rule, 0)
        if n:
            parts.append(explain.count(n, one, many))
            plural = plural or n > 1
    if counts.get("single_threaded_account"):
        parts.append(_SINGLE)
    return explain.listing(parts), plural or len(parts) > 1


def _not_followed(counts: Mapping[str, int], tail: str = "") -> str:
    what, plural = held_back(counts)
    return f"{what} {'are' if plural else 'is'} not followed up{tail}"


def account_sentence(ex: Exemption, counts: Mapping[str, int]) -> str:
    """The hygiene summary's sentence about an exemption on the account itself."""
    if ex.kind is Kind.SNOOZE and ex.until is not None:
        head = f"Snoozed until {explain.day(ex.until)} by the account team"
        if not any(counts.values()):
            return f"{head}; no hygiene issues found."
        return f"{head}: {_not_followed(counts, ' until then')}."
    head = (
        "Exempt from hygiene checks" if ex.rule == ALL_RULES else f"Exempt from {CHECKS[ex.rule]}"
    )
    if not any(counts.values()):
        return f"{head}; no hygiene issues found." if ex.rule == ALL_RULES else f"{head}."
    return f"{head}: {_not_followed(counts)}."


def contacts_sentence(kinds: Iterable[Kind], contacts: int, counts: Mapping[str, int]) -> str:
    """`Snoozed on the contact record: 1 bouncing contact is not followed up.`"""
    found = set(kinds)
    how = (
        "Snoozed"
        if found == {Kind.SNOOZE}
        else "Exempt"
        if found == {Kind.EXEMPT}
        else "Snoozed or exempt"
    )
    where = "the contact record" if contacts == 1 else "their contact records"
    return f"{how} on {where}: {_not_followed(counts)}."


def contact_note(s: Suppression) -> str:
    """The sentence added to a contact's hygiene reason when its finding is suppressed."""
    ex = s.exemption
    on_account = s.where == "account"
    if ex.kind is Kind.NOT_CHAMPION:
        where = "on the account" if on_account else "on this contact"
        return f"Marked not a champion {where}: not followed up as a departed champion."
    if ex.kind is Kind.SNOOZE and ex.until is not None:
        by = "by the account team" if on_account else "on this contact"
        return f"Snoozed until {explain.day(ex.until)} {by}: not followed up until then."
    what = "hygiene checks" if ex.rule == ALL_RULES else CHECKS[ex.rule]
    if on_account:
        return f"The account is exempt from {what}: not followed up."
    return f"Exempt from {what} on this contact: not followed up."


def coverage_note(ex: Exemption | None, rules: Sequence[Exemption] = ()) -> str:
    """The sentence the coverage summary adds for an exempt or snoozed account."""
    if ex is not None and ex.kind is Kind.SNOOZE and ex.until is not None:
        return (
            f"Snoozed until {explain.day(ex.until)} by the account team; "
            "the score still counts what is snoozed."
        )
    if ex is not None:
        return "Exempt from hygiene checks; the score still counts what is exempt."
    checks = [CHECKS[r.rule] for r in rules if r.rule in CHECKS and r.kind is Kind.EXEMPT]
    if not checks:
        return ""
    return f"Exempt from {explain.listing(checks)}; the score still counts it."


def unreadable_account(typed: Sequence[str], settings: SuppressionSettings) -> str:
    quotes = explain.listing(explain.quoted(explain.detail(t)) for t in typed)
    snooze = "snooze" if len(typed) == 1 else "snoozes"
    return (
        f"The {snooze} in {quotes} could not be read, so the account is not snoozed: "
        f"{formats_hint(settings)}."
    )


def unreadable_contact(typed: Sequence[str], settings: SuppressionSettings) -> str:
    quotes = explain.listing(explain.quoted(explain.detail(t)) for t in typed)
    snooze = "snooze" if len(typed) == 1 else "snoozes"
    return (
        f"The {snooze} in {quotes} could not be read, so this contact is not snoozed: "
        f"{formats_hint(settings)}."
    )


NAMES_MAX = 3  # contacts named in the account's summary; the rest are counted


def unreadable_contacts(names: Sequence[str], settings: SuppressionSettings) -> str:
    shown = [explain.person(n) for n in names[:NAMES_MAX]]
    if len(names) > NAMES_MAX:
        shown.append(explain.count(len(names) - NAMES_MAX, "other contact"))
    if len(names) == 1:
        lead = f"The snooze on the record of {shown[0]} could not be read, so that contact is"
    else:
        lead = (
            f"The snoozes on the records of {explain.listing(shown)} could not be read, "
            "so those contacts are"
        )
    return f"{lead} not snoozed: {formats_hint(settings)}."
