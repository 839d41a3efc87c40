"""The manifest's truth: docs/design.md's rule definitions applied to the drawn org.

The generator plans situations, but the manifest is not the plan: `evaluate`
reads each drawn account the way crmsync's rules will (with their defaults,
below) and records every record that matches, planted or incidental. A
departed champion, for instance, also leaves the account without an active
Champion, so that account is single-threaded too.

Definitions (docs/design.md "Rules"): bouncing = no email, malformed email, or a
hard bounce (a single soft bounce is not); departed champion = holds a
champion-type role on an open deal or one won within 365 days, and is
bouncing, or has a "left the company" title, or an email outside the
account's domain; active = neither; engaged = active with activity within 90
days; stale = active, created before the tier window and no activity inside
it; single-threaded = fewer than 3 engaged or a required role not held by an
active contact; renewal soon = renewal date or an open deal's close date within
120 days ahead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .model import Account, Person

TIER_WINDOW_DAYS = {"strategic": 60, "growth": 120, "maintenance": 365, "none": 180}
ENGAGED_DAYS = 90
RENEWAL_SOON_DAYS = 120
ROLE_WON_DAYS = 365
CHAMPION_ROLES = frozenset({"Champion", "Economic Buyer", "Executive Sponsor", "Decision Maker"})
REQUIRED_ROLES = ("Economic Buyer", "Champion")
LEFT_PATTERN = re.compile(r"\b(former|no longer|left)\b|\bex-", re.IGNORECASE)


@dataclass
class Cases:
    """The manifest in CRM-neutral numbers: contact n, account i, opportunity n."""

    contact: dict[str, list[int]] = field(default_factory=dict)
    account: dict[str, list[int]] = field(default_factory=dict)
    departed_by_signal: dict[str, list[int]] = field(default_factory=dict)
    moved_pairs: list[tuple[int, int, int, int]] = field(default_factory=list)
    lapsed_role: list[int] = field(default_factory=list)
    bad: list[dict[str, Any]] = field(default_factory=list)  # {object, n, kind, field, ...}
    tiers: dict[str, list[int]] = field(default_factory=dict)
    situations: dict[str, list[int]] = field(default_factory=dict)

    def add(self, group: dict[str, list[int]], key: str, value: int) -> None:
        group.setdefault(key, []).append(value)


def evaluate(c: Cases, acc: Account, today: int) -> None:
    """Record the account's cases in `c`, as docs/design.md's rules would find them `today`."""
    c.add(c.tiers, acc.tier, acc.i)
    c.add(c.situations, acc.situation, acc.i)
    counted: dict[int, set[str]] = {}
    for o in acc.opps:
        if not o.is_closed or (o.is_won and today - o.close_day <= ROLE_WON_DAYS):
            for r in o.roles:
                if r.role:
                    counted.setdefault(r.person.n, set()).add(r.role)
    window = TIER_WINDOW_DAYS[acc.tier]
    engaged, held = 0, set()
    for p in acc.people:
        bouncing = _contact_cases(c, p)
        signals = []
        if counted.get(p.n, set()) & CHAMPION_ROLES:
            if bouncing:
                signals.append("bouncing")
            if LEFT_PATTERN.search(p.title or ""):
                signals.append("title")
            if (
                p.email
                and "@" in p.email
                and p.email.rpartition("@")[2] != acc.domain
                and not bouncing
            ):
                signals.append("email_domain")
        if signals:
            c.add(c.contact, "departed_champion", p.n)
            for s in signals:
                c.add(c.departed_by_signal, s, p.n)
            continue
        if bouncing:
            continue
        held |= counted.get(p.n, set())
        if p.act_days is not None and p.act_days <= ENGAGED_DAYS:
            engaged += 1
        if p.created_days > window and (p.act_days is None or p.act_days > window):
            c.add(c.contact, "stale_contact", p.n)
    missing = [r for r in REQUIRED_ROLES if r not in held]
    if engaged < 3:
        c.add(c.account, "single_threaded_few_engaged", acc.i)
    if missing:
        c.add(c.account, "single_threaded_missing_role", acc.i)
    if engaged < 3 or missing:
        c.add(c.account, "single_threaded_account", acc.i)
    soon = [
        d
        for d in [acc.renewal_day] + [o.close_day for o in acc.opps if not o.is_closed]
        if d is not None and 0 <= d - today <= RENEWAL_SOON_DAYS
    ]
    if soon:
        c.add(c.account, "renewal_soon_account", acc.i)


def _contact_cases(c: Cases, p: Person) -> bool:
    """Record the contact-level cases; answer whether the contact is bouncing."""
    bouncing = False
    if p.email is None:
        c.add(c.contact, "missing_email", p.n)
        bouncing = True
    elif p.defect == "malformed_email":
        c.add(c.contact, "malformed_email", p.n)
        bouncing = True
    if p.bounce == "hard":
        c.add(c.contact, "hard_bounced_contact", p.n)
        bouncing = True
    elif p.bounce == "soft":
        c.add(c.contact, "soft_bounced_contact", p.n)
    if p.defect == "role_address":
        c.add(c.contact, "role_address", p.n)
    elif p.defect == "personal_email":
        c.add(c.contact, "personal_email", p.n)
    elif p.defect == "unicode_name":
        c.add(c.contact, "unicode_name", p.n)
    elif p.defect == "opted_out":
        c.add(c.contact, "opted_out", p.n)
    if bouncing:
        c.add(c.contact, "bouncing_contact", p.n)
    return bouncing
