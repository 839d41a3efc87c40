"""What the rules agree on about one account before any of them reports.

`start()` works out the account's tier, whether it renews soon, and which
buying roles count; the bouncing and departed-champion modules then add who is
bouncing and who has left (`Bounce`, `Departure`), so that the later rules see
the same "active" and "engaged" contacts:

- active contact: not deleted, not bouncing, not departed;
- engaged contact: active, with logged activity within `engaged_days`;
- a buying role counts when held on an open opportunity, on one won within
  `role_won_window_days`, or on the contact itself (HubSpot buying role);
  a role on a lost opportunity, an opportunity won long ago, or an opportunity
  of another account does not count.

All day arithmetic is in UTC calendar days: a date exactly N days before the
run date is "within N days".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import cached_property, lru_cache
from types import MappingProxyType

from crmsync.state.model import (
    AccountView,
    Contact,
    ContactChange,
    Elsewhere,
    Opportunity,
    Severity,
    Tier,
)

from . import tiers
from .settings import CommonSettings

_CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")


# ---------------------------------------------------------------- findings shared between rules


class BounceKind(StrEnum):
    HARD = "hard_bounce"  # the address is gone
    SOFT_REPEATED = "repeated_soft_bounce"
    UNEXPLAINED = "unexplained_bounce"  # bounced, the server did not say why: not a departure sign
    INVALID = "invalid_address"
    NO_EMAIL = "no_email"
    UNDELIVERABLE = "undeliverable_domain"
    SOFT_ONCE = "soft_bounce"  # a note: not bouncing yet
    REFUSED = "refused_by_recipient"  # a note: refused for the sender or the message (spam, policy)
    ROLE_ADDRESS = "role_address"  # a note: a shared mailbox, not a person


@dataclass(frozen=True)
class Bounce:
    """Why a contact's email cannot be relied on (`bouncing`), or a note about it."""

    kind: BounceKind
    bouncing: bool
    email: str | None = None
    detail: str | None = None  # SMTP status, validator message, or domain
    reason: str | None = None  # the CRM's bounce reason code (e.g. SPAM), when it gave one
    bounced_at: datetime | None = None
    bounce_count: int | None = None
    active_since: date | None = None  # activity logged after the bounce
    also: tuple[BounceKind, ...] = ()  # further, lesser findings on the same address


class SignalKind(StrEnum):
    MOVED = "moved_account"
    LEFT_COMPANY = "left_company_field"
    EMAIL_DOMAIN = "email_domain_changed"
    TITLE = "title"
    BOUNCE = "email_bouncing"
    SAME_NAME = "same_name_elsewhere"  # corroborates, never enough alone


@dataclass(frozen=True)
class Signal:
    kind: SignalKind
    seen_at: datetime | None = None
    old: str | None = None
    new: str | None = None


@dataclass(frozen=True)
class Departure:
    """Signs that a contact has left the account's company."""

    contact: Contact
    signals: tuple[Signal, ...]
    elsewhere: Elsewhere | None = None
    moved_away: bool = False  # the record now belongs to another account
    # The signals' kinds, set once here: nearly half the contacts of an org carry a
    # same-name match, and a cached_property's first read (a lock on 3.11) cost more
    # than the set itself.
    kinds: frozenset[SignalKind] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kinds", frozenset(s.kind for s in self.signals))


@dataclass(frozen=True)
class HeldRole:
    """A buying role that counts (see module docstring)."""

    role: str  # normalised, e.g. "Economic Buyer"
    opportunity: Opportunity | None  # None: held on the contact itself


@dataclass(frozen=True)
class Renewal:
    """The nearest date that makes the account "renew soon"."""

    on: date
    opportunity: Opportunity | None  # None: the account's renewal date


# ---------------------------------------------------------------- the facts


@dataclass(frozen=True)
class Facts:
    """One account's shared facts; built by `start`, completed by the early rules."""

    as_of: datetime
    today: date
    tier: Tier
    renewal: Renewal | None
    engaged_days: int
    contacts: Mapping[str, Contact]  # current, not deleted, by id (sorted)
    former: Mapping[str, Contact]  # moved to another account; by id (sorted)
    roles: Mapping[str, tuple[HeldRole, ...]]  # contact id -> roles that count
    bounces: Mapping[str, Bounce] = field(default_factory=dict)
    departures: Mapping[str, Departure] = field(default_factory=dict)
    departed: frozenset[str] = frozenset()  # contacts treated as gone

    # Derived views are cached per instance: `dataclasses.replace` makes a new
    # instance, so a cache never outlives the facts it was computed from.

    @cached_property
    def bouncing(self) -> frozenset[str]:
        return frozenset(cid for cid, b in self.bounces.items() if b.bouncing)

    @cached_property
    def active(self) -> tuple[Contact, ...]:
        gone = self.bouncing | self.departed
        return tuple(c for cid, c in self.contacts.items() if cid not in gone)

    @cached_property
    def _active_ids(self) -> frozenset[str]:
        return frozenset(c.id for c in self.active)

    def is_active(self, contact_id: str) -> bool:
        return contact_id in self._active_ids

    @cached_property
    def engaged(self) -> tuple[Contact, ...]:
        since = self.today - timedelta(days=self.engaged_days)
        out = []
        for c in self.active:
            last = activity_day(c)
            if last is not None and last >= since:
                out.append(c)
        return tuple(out)

    def roles_of(self, contact_id: str) -> tuple[str, ...]:
        """Distinct counting role names of a contact, in first-seen order."""
        held = self.roles.get(contact_id)
        return tuple(dict.fromkeys(r.role for r in held)) if held else ()

    def covered_roles(self) -> tuple[str, ...]:
        """Counting roles held by active contacts, sorted by name."""
        return self._covered

    @cached_property
    def _covered(self) -> tuple[str, ...]:
        held = {r.role for cid, rs in self.roles.items() if self.is_active(cid) for r in rs}
        return tuple(sorted(held, key=str.casefold))


def start(
    view: AccountView,
    common: CommonSettings,
    tier_settings: tiers.Settings,
    as_of: datetime,
    role_names: Sequence[str] = (),
) -> Facts:
    """Tier, renewal and counting roles of one account, as of `as_of`."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC)")
    today = as_of.astimezone(UTC).date()
    contacts = {c.id: c for c in sorted(view.contacts, key=_by_id) if c.deleted_at is None}
    former = _former_contacts(view, contacts)
    return Facts(
        as_of=as_of,
        today=today,
        tier=tiers.tier_of(view.account, tier_settings),
        renewal=_renewal(view, today, common.renewal_window_days),
        engaged_days=common.engaged_days,
        contacts=MappingProxyType(contacts),
        former=MappingProxyType(former),
        roles=MappingProxyType(
            _counting_roles(view, today, common.role_won_window_days, role_names)
        ),
    )


# ---------------------------------------------------------------- helpers


def activity_day(contact: Contact) -> date | None:
    """The UTC day of the contact's last logged activity."""
    return contact.last_activity_at.date() if contact.last_activity_at else None


def normalise_role(raw: str | None, known: Sequence[str] = ()) -> tuple[str, ...]:
    """Role names in one spelling: `;`-lists split, codes in words, known names' case.

    A CRM's role codes arrive as names (the HubSpot connector maps hs_buying_role at pull;
    state/migrations.py m004 renamed codes stored before). A code left over reads as words.

    >>> normalise_role("END_USER;CHAMPION", ["Champion"])
    ('End User', 'Champion')
    """
    if not raw:
        return ()
    return _normalised(raw, tuple(known))


@lru_cache(maxsize=1024)
def _normalised(raw: str, known: tuple[str, ...]) -> tuple[str, ...]:
    # An org holds a handful of distinct role texts: each is read once per settings.
    spelling = _spelling(known)
    out: list[str] = []
    for part in raw.split(";"):
        name = part.strip()
        if not name:
            continue
        if _CODE.match(name) and "_" in name:
            name = name.replace("_", " ").title()
        name = spelling.get(name.casefold(), name)
        if name not in out:
            out.append(name)
    return tuple(out)


@lru_cache(maxsize=64)
def _spelling(known: tuple[str, ...]) -> dict[str, str]:
    """casefolded name -> the known spelling (built once per settings' names)."""
    return {k.strip().casefold(): k.strip() for k in known}


def email_domain(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    domain = email.rsplit("@", 1)[1].strip().strip(".").lower()
    return domain or None


def in_domain(domain: str | None, account_domain: str | None) -> bool:
    """Is `domain` the account's domain or one of its subdomains?"""
    if not domain or not account_domain:
        return False
    return domain == account_domain or domain.endswith("." + account_domain)


def latest(changes: Iterable[ContactChange]) -> ContactChange | None:
    """The most recent change (ties broken by value, so the answer is deterministic)."""
    return max(changes, key=lambda h: (h.seen_at, h.new or "", h.old or ""), default=None)


def _by_id(c: Contact) -> str:
    return c.id


def _former_contacts(view: AccountView, current: Mapping[str, Contact]) -> dict[str, Contact]:
    """Contacts whose latest account change took them away from this account."""
    moves: dict[str, list[ContactChange]] = {}
    for h in view.history:
        if h.field == "account_id":
            moves.setdefault(h.contact_id, []).append(h)
    rows = {c.id: c for c in view.former_contacts}
    gone: dict[str, str | None] = {}
    for cid, changes in moves.items():
        last = latest(changes)
        if last is not None and last.old == view.id and last.new != view.id:
            gone[cid] = last.new
    for e in view.elsewhere:  # a move the mirror saw without a history row
        if e.how == "moved" and e.contact_id not in moves:
            gone.setdefault(e.contact_id, e.other_account_id)
    out: dict[str, Contact] = {}
    for cid in sorted(gone):
        if cid in current:
            continue
        row = rows.get(cid) or Contact(crm=view.crm, id=cid, account_id=gone[cid])
        if row.deleted_at is None:
            out[cid] = row
    return out


def _renewal(view: AccountView, today: date, window_days: int) -> Renewal | None:
    """The nearest renewal within the window: the account's renewal date (upcoming), or
    an open opportunity's close date (upcoming, or overdue by at most the window)."""
    window = timedelta(days=window_days)
    found: list[tuple[date, str, Renewal]] = []
    if view.account.renewal_date and today <= view.account.renewal_date <= today + window:
        found.append((view.account.renewal_date, "", Renewal(view.account.renewal_date, None)))
    for opp in view.opportunities:
        if opp.deleted_at is None and not opp.is_closed and not opp.is_won and opp.close_date:
            if today - window <= opp.close_date <= today + window:
                found.append((opp.close_date, opp.id, Renewal(opp.close_date, opp)))
    if not found:
        return None
    # An upcoming date is more telling than an overdue one; then the nearest.
    return min(found, key=lambda t: (t[0] < today, abs((t[0] - today).days), t[1]))[2]


def _counting_roles(
    view: AccountView, today: date, won_window_days: int, known: Sequence[str]
) -> dict[str, tuple[HeldRole, ...]]:
    opps = {o.id: o for o in view.opportunities if o.deleted_at is None}
    won_since = today - timedelta(days=won_window_days)
    held: dict[str, list[HeldRole]] = {}
    for r in sorted(view.roles, key=lambda r: (r.contact_id, r.opportunity_id or "", r.id)):
        if r.deleted_at is not None:
            continue
        opp = None
        if r.opportunity_id is not None:
            opp = opps.get(r.opportunity_id)
            if opp is None or not _role_counts_on(opp, won_since):
                continue
        for name in normalise_role(r.role, known):
            held.setdefault(r.contact_id, []).append(HeldRole(name, opp))
    return {cid: tuple(v) for cid, v in sorted(held.items())}


def _role_counts_on(opp: Opportunity, won_since: date) -> bool:
    if opp.is_won:
        return opp.close_date is not None and opp.close_date >= won_since
    return not opp.is_closed


_LADDER = tuple(Severity)


def step(severity: Severity, by: int) -> Severity:
    """Move a severity up (or down) the ladder, staying between info and critical."""
    if not by:
        return severity
    return _LADDER[max(0, min(len(_LADDER) - 1, severity.rank + by))]
