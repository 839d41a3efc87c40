"""Coverage: how well the account's relationship is spread, as numbers on the account.

Per account:

- stakeholders: active contacts (not bouncing, not departed);
- engaged: active contacts with logged activity in the last 90 days;
- roles covered: the buying roles that count (open opportunity, won within
  365 days, or on the contact record) held by active contacts;
- score, 0 to 100: a weighted average of four parts, each between 0 and 1
  (weights in `[rules.coverage]`, defaults in brackets):
  - engaged (40): engaged contacts / the tier's engaged-contact target
    (`min_engaged` of `[rules.single_threaded_account]`), at most 1;
  - roles (30): required roles covered / required roles (1 when none are required);
  - recency (20): 1 when the latest activity of any active contact is within
    the engaged window (90 days), falling evenly to 0 at the tier's stale
    window (60/120/365/180 days) and after; 0 with no activity;
  - champions (10): 1 when no champion appears to have left, else 0
    (a contact marked "not a champion" does not count; a snoozed or exempt
    departed champion does);
  rounded half up;
- status: green at `green_min_score` (70) and above, amber at
  `amber_min_score` (40) and above, red below; but never green while a
  required role is uncovered, engaged contacts are below the target, or a
  champion has left (at most amber then).

A snooze or an exemption does not change coverage: the numbers, the score and
the status count the snoozed and exempt problems as if they were open (they
are still true; suppression only decides what is followed up, see
rules/suppression.py). The summary then says so: "... score 45 (amber).
Snoozed until 31 January 2027 by the account team; the score still counts
what is snoozed."
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from state.model import AccountView, Coverage, CoverageStatus

from . import explain
from .context import Facts, activity_day
from .settings import require

NAME = "coverage"
WHERE = f"[rules.{NAME}]"


@dataclass(frozen=True)
class Settings:
    """`[rules.coverage]`: score weights and status thresholds."""

    engaged_weight: float = 40.0
    roles_weight: float = 30.0
    recency_weight: float = 20.0
    champions_weight: float = 10.0
    green_min_score: int = 70
    amber_min_score: int = 40

    def __post_init__(self) -> None:
        weights = ("engaged_weight", "roles_weight", "recency_weight", "champions_weight")
        for key in weights:
            value = getattr(self, key)
            require(
                isinstance(value, int | float) and value >= 0,
                WHERE,
                key,
                f"must be a number, 0 or more; got {value!r}.",
            )
        require(
            sum(getattr(self, k) for k in weights) > 0,
            WHERE,
            "engaged_weight",
            "and the other weights are all 0; give at least one weight above 0.",
        )
        for key in ("green_min_score", "amber_min_score"):
            value = getattr(self, key)
            require(
                isinstance(value, int) and 0 <= value <= 100,
                WHERE,
                key,
                f"must be a whole number from 0 to 100; got {value!r}.",
            )
        require(
            self.amber_min_score <= self.green_min_score,
            WHERE,
            "amber_min_score",
            f"({self.amber_min_score}) must not be above green_min_score ({self.green_min_score}).",
        )


def evaluate(
    view: AccountView,
    settings: Settings,
    as_of: datetime,
    facts: Facts,
    *,
    target_engaged: int,
    required_roles: Sequence[str],
    stale_window_days: int,
    departed_champions: int,
    note: str = "",
) -> Coverage:
    """The account's coverage; `note` (a snooze or an exemption) ends the summary."""
    active = facts.active
    engaged = facts.engaged
    covered = facts.covered_roles()
    covered_cf = {r.casefold() for r in covered}
    required = [r for r in required_roles if r.strip()]
    have = [r for r in required if r.strip().casefold() in covered_cf]
    missing = [r for r in required if r.strip().casefold() not in covered_cf]

    parts = {
        "engaged": 1.0 if target_engaged <= 0 else min(1.0, len(engaged) / target_engaged),
        "roles": 1.0 if not required else len(have) / len(required),
        "recency": _recency(facts, stale_window_days),
        "champions": 0.0 if departed_champions else 1.0,
    }
    weights = {
        "engaged": settings.engaged_weight,
        "roles": settings.roles_weight,
        "recency": settings.recency_weight,
        "champions": settings.champions_weight,
    }
    total = sum(weights.values())
    score = int(100 * sum(weights[k] * parts[k] for k in parts) / total + 0.5)
    score = max(0, min(100, score))
    if score >= settings.green_min_score:
        status = CoverageStatus.GREEN
    elif score >= settings.amber_min_score:
        status = CoverageStatus.AMBER
    else:
        status = CoverageStatus.RED
    if status is CoverageStatus.GREEN and (
        missing or len(engaged) < target_engaged or departed_champions
    ):
        # A high score must not hide the very problem an account manager acts on:
        # a single-threaded account or a departed champion is never green.
        status = CoverageStatus.AMBER
    summary = _summary(
        len(active), len(engaged), facts.engaged_days, covered, missing, score, status
    )
    if note:
        summary = f"{summary} {note}"
    return Coverage(
        crm=view.crm,
        account_id=view.id,
        stakeholders=len(active),
        engaged=len(engaged),
        roles_covered=covered,
        score=score,
        status=status,
        summary=summary,
    )


def _recency(facts: Facts, stale_window_days: int) -> float:
    days = [d for d in (activity_day(c) for c in facts.active) if d is not None]
    if not days:
        return 0.0
    age = (facts.today - max(days)).days
    full, zero = facts.engaged_days, stale_window_days
    if age <= full:
        return 1.0
    if age >= zero:
        return 0.0
    return (zero - age) / (zero - full)


def _summary(
    stakeholders: int,
    engaged: int,
    engaged_days: int,
    covered: Sequence[str],
    missing: Sequence[str],
    score: int,
    status: CoverageStatus,
) -> str:
    roles = f"roles covered: {', '.join(covered)}" if covered else "no buying roles covered"
    gap = f"; missing: {', '.join(missing)}" if missing else ""
    return (
        f"{explain.count(stakeholders, 'stakeholder')}, {engaged} engaged in the last "
        f"{engaged_days} days; {roles}{gap}; score {score} ({status.value})."
    )
