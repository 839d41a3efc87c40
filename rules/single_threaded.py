"""Single-threaded account: the relationship hangs on too few people.

An account is single-threaded when either:

- fewer than `min_engaged` (3; per tier with `min_engaged_by_tier`) of its
  contacts are engaged: active (not bouncing, not departed) and with logged
  activity in the last 90 days; or
- a required role (`required_roles`: Economic Buyer and Champion) is not held
  by any active contact. A role counts when held on an open opportunity, on
  one won within the last 365 days, or on the contact record itself; a role
  on a lost opportunity does not.

The explanation lists who is engaged and which roles are missing.

Severity: medium; one step higher for strategic accounts, and one more when
the account's renewal date or an open opportunity's close date is within the
renewal window (120 days).

The account manager gets one task per single-threaded account.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from crmsync.state.model import AccountView, Contact, Flag, Severity, Tier

from . import explain
from .context import Facts, activity_day, step
from .settings import require, require_names

NAME = "single_threaded_account"


@dataclass(frozen=True)
class Evidence:
    """What a single-threaded account's task reads from the flag's evidence (written below)."""

    engaged_count: int | None = None
    min_engaged: int | None = None
    missing_roles: tuple[str, ...] = ()

    @classmethod
    def of(cls, evidence: Mapping[str, object]) -> Evidence:
        def count(name: str) -> int | None:
            value = evidence.get(name)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        roles = evidence.get("missing_roles")
        missing = tuple(str(r) for r in roles if r) if isinstance(roles, list | tuple) else ()
        return cls(count("engaged_count"), count("min_engaged"), missing)


WHERE = f"[rules.{NAME}]"
SHOWN = 5  # engaged people named in the explanation; the rest are counted


@dataclass(frozen=True)
class Settings:
    """`[rules.single_threaded_account]`."""

    min_engaged: int = 3
    min_engaged_by_tier: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    required_roles: tuple[str, ...] = ("Economic Buyer", "Champion")

    def __post_init__(self) -> None:
        require(
            isinstance(self.min_engaged, int) and self.min_engaged >= 0,
            WHERE,
            "min_engaged",
            f"must be a whole number, 0 or more; got {self.min_engaged!r}.",
        )
        tiers = [t.value for t in Tier]
        for key, value in self.min_engaged_by_tier.items():
            require(
                key in tiers,
                WHERE,
                "min_engaged_by_tier",
                f"has unknown tier `{key}`; use {', '.join(tiers)}.",
            )
            require(
                isinstance(value, int) and not isinstance(value, bool) and value >= 0,
                WHERE,
                f"min_engaged_by_tier.{key}",
                f"must be a whole number, 0 or more; got {value!r}.",
            )
        require_names(WHERE, "required_roles", self.required_roles)


def min_engaged_for(settings: Settings, tier: Tier) -> int:
    return int(settings.min_engaged_by_tier.get(tier.value, settings.min_engaged))


def missing_roles(settings: Settings, facts: Facts) -> tuple[str, ...]:
    covered = {r.casefold() for r in facts.covered_roles()}
    return tuple(r for r in settings.required_roles if r.strip().casefold() not in covered)


def evaluate(
    view: AccountView, settings: Settings, as_of: datetime, facts: Facts
) -> Iterator[Flag]:
    engaged = facts.engaged
    target = min_engaged_for(settings, facts.tier)
    missing = missing_roles(settings, facts)
    if len(engaged) >= target and not missing:
        return
    sev = step(Severity.MEDIUM, int(facts.tier is Tier.STRATEGIC) + int(facts.renewal is not None))
    summary = _summary(view, len(engaged), target, missing)
    yield Flag(
        rule=NAME,
        crm=view.crm,
        account_id=view.id,
        subject_id=view.id,
        severity=sev,
        explanation=_explain(view, summary, target, missing, facts),
        evidence={
            "tier": facts.tier.value,
            "engaged": [{"contact_id": c.id, "last_activity_date": _iso(c)} for c in engaged],
            "engaged_count": len(engaged),
            "min_engaged": target,
            "active_count": len(facts.active),
            "required_roles": list(settings.required_roles),
            "covered_roles": list(facts.covered_roles()),
            "missing_roles": list(missing),
            "renewal_date": facts.renewal.on.isoformat() if facts.renewal else None,
            "renewal_opportunity_id": (
                facts.renewal.opportunity.id
                if facts.renewal and facts.renewal.opportunity
                else None
            ),
            "summary": summary,
        },
    )


def _summary(view: AccountView, n: int, target: int, missing: tuple[str, ...]) -> str:
    reasons = []
    if n < target:
        reasons.append(
            f"{explain.count(n, 'engaged contact')} where at least {target} are expected"
        )
    if missing:
        reasons.append(f"nobody active holds the {explain.listing(missing, 'or')} role")
    return (
        f"{explain.company(view.account.name) or 'This account'} relies on too few people: "
        f"{' and '.join(reasons)}."
    )


def _explain(
    view: AccountView, summary: str, target: int, missing: tuple[str, ...], facts: Facts
) -> str:
    company = explain.company(view.account.name) or "this account"
    engaged = facts.engaged
    if engaged:
        # No dates: a task that named them would be rewritten each time one of these
        # people logs activity (the evidence keeps them).
        names = [explain.person(c.name) for c in engaged[:SHOWN]]
        if len(engaged) > SHOWN:
            names.append(f"{len(engaged) - SHOWN} more")
        who = f"Engaged in the last {facts.engaged_days} days: {explain.listing(names)}."
    else:
        who = f"Nobody at {company} has logged activity in the last {facts.engaged_days} days."
    tier = f"This is {explain.tier_phrase(facts.tier)}."
    renewal = f"Time matters: {explain.renewal_phrase(facts.renewal)}." if facts.renewal else ""
    steps = []
    if len(engaged) < target:
        steps.append(f"meet more people at {company}")
    if missing:
        steps.append(
            f"find out who is the {explain.listing(missing)} and record them on the opportunity"
        )
    nxt = f"Next step: {explain.listing(steps)}."
    return explain.paragraph(summary, who, tier, renewal, nxt)


def _iso(c: Contact) -> str | None:
    d = activity_day(c)
    return d.isoformat() if d else None
