"""Stale contact: an active contact with no logged activity inside their tier's window.

Windows by the account's tier: strategic 60 days, growth 120, maintenance 365,
no tier 180. A contact is stale when both:

- the record was created before the window started (someone added yesterday
  is never stale), and
- there is no logged activity inside the window (never any activity counts
  as none).

Days are calendar days (UTC). Activity on the day exactly one window before
the run date still counts as inside the window: with a 60-day window, a run on
1 May 2026 accepts activity on 2 March 2026 but not on 1 March.

Only active contacts are checked: bouncing and departed people are reported
as such instead.

Severity: low; one step higher when the contact holds a buying role that
counts, and one more when the account renews soon.

The account manager sees hygiene status "stale" on the contact and a line in
the account's grouped hygiene task.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from crmsync.state.model import AccountView, Flag, Severity, Tier

from . import explain
from .context import Facts, activity_day, step
from .settings import require_days

NAME = "stale_contact"
WHERE = f"[rules.{NAME}]"


@dataclass(frozen=True)
class Settings:
    """`[rules.stale_contact]`: windows in days, by account tier."""

    strategic_days: int = 60
    growth_days: int = 120
    maintenance_days: int = 365
    none_days: int = 180

    def __post_init__(self) -> None:
        require_days(WHERE, self, "strategic_days", "growth_days", "maintenance_days", "none_days")


def window_days(settings: Settings, tier: Tier) -> int:
    return int(getattr(settings, f"{tier.value}_days"))


def evaluate(
    view: AccountView, settings: Settings, as_of: datetime, facts: Facts
) -> Iterator[Flag]:
    days = window_days(settings, facts.tier)
    cutoff = facts.today - timedelta(days=days)
    # The same for every stale contact of the account (a quarter of the contacts of an
    # org are stale): made once.
    tier = facts.tier.value
    cutoff_date = cutoff.isoformat()
    expect = f"For {explain.tier_phrase(facts.tier)} we expect contact at least every {days} days."
    renewal = f"Time matters: {explain.renewal_phrase(facts.renewal)}." if facts.renewal else ""
    renews = int(facts.renewal is not None)
    for contact in facts.active:
        created = contact.created_at.date() if contact.created_at else None
        last = activity_day(contact)
        if (created is not None and created >= cutoff) or (last is not None and last >= cutoff):
            continue
        roles = facts.roles_of(contact.id)
        who = explain.person(contact.name)
        summary = _summary(who, last, created)
        sev = step(Severity.LOW, int(bool(roles)) + renews)
        yield Flag(
            rule=NAME,
            crm=view.crm,
            account_id=view.id,
            subject_id=contact.id,
            contact_id=contact.id,
            severity=sev,
            explanation=_explain(who, summary, expect, roles, renewal),
            evidence={
                "contact_id": contact.id,
                "last_activity_date": last.isoformat() if last else None,
                "created_date": created.isoformat() if created else None,
                "tier": tier,
                "window_days": days,
                "cutoff_date": cutoff_date,
                "roles": list(roles),
                "summary": summary,
            },
        )


def _summary(who: str, last: date | None, created: date | None) -> str:
    if last is not None:
        return f"{who} has no logged activity since {explain.day(last)}."
    if created is not None:
        return f"{who} has no logged activity since being added on {explain.day(created)}."
    return f"{who} has no logged activity on record."


def _explain(who: str, summary: str, expect: str, roles: tuple[str, ...], renewal: str) -> str:
    role = f"{who} holds the {explain.listing(roles)} role." if roles else ""
    nxt = (
        f"Reach out to {who} to confirm they are still involved, "
        "or update the record if they have moved on."
    )
    return explain.paragraph(summary, expect, role, renewal, nxt)
