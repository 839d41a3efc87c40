"""Wording helpers shared by the rules' explanations.

An explanation is what an account manager reads in the CRM. It must be stable
from one day to the next for unchanged data (a changed text is a CRM write), so
dates are absolute ("3 March 2026"), never relative ("73 days ago"), and the
month names are spelled here rather than taken from the process locale.

CRM values (names, titles, e-mail addresses, account and opportunity names)
enter an explanation only through `person`, `company`, `title`, `email` and
`detail`: one line, control characters removed, at a bounded length with an
ellipsis (state/text.py). A 10,000-character job title must not become a
10,000-character task.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING

from crmsync.state.model import Tier
from crmsync.state.text import ACCOUNT_MAX, DETAIL_MAX, EMAIL_MAX, NAME_MAX, TITLE_MAX, clip

if TYPE_CHECKING:
    from .context import Renewal

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

# Words an account manager should never meet in an explanation: our own jargon
# and CRM API field names. Tests check every explanation against this list.
INTERNAL_WORDS = (
    "flag",
    "rule",
    "crmsync",
    "evidence",
    "subject_id",
    "account_id",
    "contact_id",
    "none",
    "null",
    "__c",
    "hs_",
    "isemailbounced",
    "emailbounced",
    "lastactivitydate",
)


def day(value: date | datetime) -> str:
    """`3 March 2026`: an absolute date in words (UTC day for datetimes)."""
    d = value.date() if isinstance(value, datetime) else value
    return f"{d.day} {_MONTHS[d.month - 1]} {d.year}"


def listing(items: Iterable[str], conjunction: str = "and") -> str:
    """`a`, `a and b`, `a, b and c`."""
    parts = list(items)
    if not parts:
        return ""
    if len(parts) == 1:
        return parts[0]
    return f"{', '.join(parts[:-1])} {conjunction} {parts[-1]}"


def count(n: int, singular: str, plural: str | None = None) -> str:
    """`1 contact`, `3 contacts`."""
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"


def tier_phrase(tier: Tier) -> str:
    """`a strategic account`; untiered accounts read as `an account without a tier`."""
    if tier is Tier.NONE:
        return "an account without a tier"
    return f"a {tier.value} account"


def quoted(text: str) -> str:
    return f"\u201c{text}\u201d"


def person(name: str | None) -> str:
    """A person's name as an explanation quotes it (at most NAME_MAX characters)."""
    return clip(name, NAME_MAX)


def company(name: str | None) -> str:
    """An account or opportunity name as quoted (at most ACCOUNT_MAX characters)."""
    return clip(name, ACCOUNT_MAX)


def title(text: str | None) -> str:
    """A job title in quotes (at most TITLE_MAX characters inside them)."""
    return quoted(clip(text, TITLE_MAX))


def email(address: str | None) -> str:
    return clip(address, EMAIL_MAX)


def detail(text: str | None) -> str:
    """Free text from the CRM, such as a mail server's bounce answer."""
    return clip(text, DETAIL_MAX)


def paragraph(*sentences: str) -> str:
    """Join sentences into one paragraph, skipping empty ones."""
    return " ".join(s.strip() for s in sentences if s and s.strip())


def renewal_phrase(renewal: Renewal) -> str:
    """`the renewal on 1 June 2026` / `the opportunity “Renewal 2026” closes on 1 June 2026`."""
    o = renewal.opportunity
    if o is None:
        return f"the renewal on {day(renewal.on)}"
    return f"the opportunity {quoted(company(o.name) or o.id)} closes on {day(renewal.on)}"
