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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from crmsync.state.model import AccountView, Coverage, CoverageStatus

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


@dataclass(frozen=True)
class Breakdown:
    """Why an account's coverage is what it is: the parts of its score and any cap.

    `parts` are each between 0 and 1, `weights` the points each is worth (from
    `[rules.coverage]`); `capped_by` names what held a green score at amber:
    "roles" (a required role uncovered), "engaged" (engaged contacts below the
    target), "champions" (a champion has left). The leader report says it in
    words (`explain_parts`, `explain_status`)."""

    coverage: Coverage
    parts: Mapping[str, float]
    weights: Mapping[str, float]
    capped_by: tuple[str, ...]
    engaged: int
    target_engaged: int
    required_roles: tuple[str, ...]
    missing_roles: tuple[str, ...]
    last_activity_days: int | None  # days from the latest activity to the as-of day
    engaged_days: int
    stale_window_days: int
    departed_champions: int

    def points(self, part: str) -> float:
        """What `part` contributes to the score, in points out of 100."""
        total = sum(self.weights.values())
        return 100 * self.weights[part] * self.parts[part] / total if total else 0.0

    def out_of(self, part: str) -> float:
        """The most `part` can contribute, in points out of 100."""
        total = sum(self.weights.values())
        return 100 * self.weights[part] / total if total else 0.0


def breakdown(
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
) -> Breakdown:
    """The account's Coverage with the parts of its score and what capped its status;
    `note` (a snooze or an exemption) ends the summary."""
    active = facts.active
    engaged = facts.engaged
    # the latest activity of an active contact: read by the recency part and the breakdown
    latest = max((d for d in map(activity_day, active) if d is not None), default=None)
    covered = facts.covered_roles()
    covered_cf = {r.casefold() for r in covered}
    required = [r for r in required_roles if r.strip()]
    have = [r for r in required if r.strip().casefold() in covered_cf]
    missing = [r for r in required if r.strip().casefold() not in covered_cf]

    parts = {
        "engaged": 1.0 if target_engaged <= 0 else min(1.0, len(engaged) / target_engaged),
        "roles": 1.0 if not required else len(have) / len(required),
        "recency": _recency(facts, stale_window_days, latest),
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
    capped_by = tuple(
        name
        for name, holds in (
            ("roles", bool(missing)),
            ("engaged", len(engaged) < target_engaged),
            ("champions", bool(departed_champions)),
        )
        if holds
    )
    if status is CoverageStatus.GREEN and capped_by:
        # A high score must not hide the very problem an account manager acts on:
        # a single-threaded account or a departed champion is never green.
        status = CoverageStatus.AMBER
    else:
        capped_by = ()
    summary = _summary(
        len(active), len(engaged), facts.engaged_days, covered, missing, score, status
    )
    if note:
        summary = f"{summary} {note}"
    return Breakdown(
        coverage=Coverage(
            crm=view.crm,
            account_id=view.id,
            stakeholders=len(active),
            engaged=len(engaged),
            roles_covered=covered,
            score=score,
            status=status,
            summary=summary,
        ),
        parts=parts,
        weights=weights,
        capped_by=capped_by,
        engaged=len(engaged),
        target_engaged=target_engaged,
        required_roles=tuple(required),
        missing_roles=tuple(missing),
        last_activity_days=(facts.today - latest).days if latest is not None else None,
        engaged_days=facts.engaged_days,
        stale_window_days=stale_window_days,
        departed_champions=departed_champions,
    )


def explain_status(b: Breakdown) -> str:
    """The status and what capped it, e.g. "Amber (score 85): capped at amber: single-threaded
    (2 engaged contacts where 3 are expected)."."""
    c = b.coverage
    head = f"{c.status.value.capitalize()} (score {c.score} of 100)"
    if not b.capped_by:
        return f"{head}."
    reasons = []
    thin = []
    if "engaged" in b.capped_by:
        thin.append(
            f"{explain.count(b.engaged, 'engaged contact')} where {b.target_engaged} "
            f"{'is' if b.target_engaged == 1 else 'are'} expected"
        )
    if "roles" in b.capped_by:
        thin.append(f"nobody active holds the {explain.listing(b.missing_roles, 'or')} role")
    if thin:
        reasons.append(f"single-threaded ({'; '.join(thin)})")
    if "champions" in b.capped_by:
        reasons.append(
            "a champion has left"
            if b.departed_champions == 1
            else f"{b.departed_champions} champions have left"
        )
    return f"{head}: capped at amber: {explain.listing(reasons)}; the score alone would be green."


def explain_parts(b: Breakdown) -> list[str]:
    """One line per part of the score, with its points, e.g. "Engaged contacts: 2 of 3
    (27 of 40 points)"."""
    lines = []
    pts = {k: (_round(b.points(k)), _round(b.out_of(k))) for k in b.parts}
    if b.target_engaged > 0:
        engaged = f"{b.engaged} of {b.target_engaged} expected in the last {b.engaged_days} days"
    else:
        engaged = f"{b.engaged} (no target for this tier)"
    lines.append(f"Engaged contacts: {engaged} ({pts['engaged'][0]} of {pts['engaged'][1]} points)")
    if b.required_roles:
        have = len(b.required_roles) - len(b.missing_roles)
        roles = f"{have} of {len(b.required_roles)} required roles held"
        if b.missing_roles:
            roles += f" (missing: {', '.join(b.missing_roles)})"
    else:
        roles = "no roles required"
    lines.append(f"Buying roles: {roles} ({pts['roles'][0]} of {pts['roles'][1]} points)")
    if b.last_activity_days is None:
        recency = "no logged activity"
    else:
        recency = (
            f"latest activity {explain.count(b.last_activity_days, 'day')} before the as-of date"
        )
        recency += f"; full points within {b.engaged_days} days, none after {b.stale_window_days}"
    lines.append(f"Recent activity: {recency} ({pts['recency'][0]} of {pts['recency'][1]} points)")
    champions = (
        "no champion has left"
        if not b.departed_champions
        else explain.count(b.departed_champions, "champion") + " left"
    )
    lines.append(f"Champions: {champions} ({pts['champions'][0]} of {pts['champions'][1]} points)")
    return lines


def _round(x: float) -> int:
    return int(x + 0.5)


def _recency(facts: Facts, stale_window_days: int, latest: date | None) -> float:
    if latest is None:
        return 0.0
    age = (facts.today - latest).days
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
