"""The hygiene rules: pure functions from one account's mirror rows to findings.

`evaluate_account(view, settings, as_of)` is the one entry point. It

1. works out the account's shared facts (`rules/context.py`): tier, renewal,
   buying roles that count;
2. asks `bouncing_contacts` who is bouncing and `departed_champions` who has
   left, so every later rule sees the same active and engaged contacts;
3. runs each rule in `RULES` (`evaluate(view, settings, as_of, facts)`);
4. marks findings the account manager exempted as suppressed
   (`[rules.suppression]`), computes coverage and each contact's hygiene status.

No I/O, no clock, no logging: `as_of` is the time, settings come from
`RuleSettings.from_tables` (the `[rules]` part of sync.toml), and the same inputs
always give the same, identically ordered output.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from state.model import AccountView, Coverage, Flag, HygieneStatus, Severity

from . import (
    bouncing_contacts,
    context,
    coverage,
    departed_champions,
    explain,
    single_threaded,
    stale_contacts,
    tiers,
)
from .bouncing_contacts import DomainCheck
from .context import Facts
from .coverage import Breakdown as CoverageBreakdown
from .settings import (
    ALL_RULES,
    CommonSettings,
    SuppressionSettings,
    exemptions,
    from_table,
    unknown_key_error,
)

# The rules, in the order they run and report. Bouncing and departed come first:
# the others need to know who is no longer active.
RULES = (bouncing_contacts, departed_champions, stale_contacts, single_threaded)
RULE_NAMES = tuple(r.NAME for r in RULES)

# Which hygiene status each contact-level rule stands for (info notes stay ok).
_STATUS_BY_RULE = {
    stale_contacts.NAME: HygieneStatus.STALE,
    bouncing_contacts.NAME: HygieneStatus.BOUNCING,
    departed_champions.NAME: HygieneStatus.DEPARTED,
}
_STATUS_RANK = {s: i for i, s in enumerate(HygieneStatus)}


@dataclass(frozen=True)
class RuleSettings:
    """Everything under `[rules]` in sync.toml. Field names are the table names."""

    common: CommonSettings = field(default_factory=CommonSettings)
    tiers: tiers.Settings = field(default_factory=tiers.Settings)
    suppression: SuppressionSettings = field(default_factory=SuppressionSettings)
    stale_contact: stale_contacts.Settings = field(default_factory=stale_contacts.Settings)
    bouncing_contact: bouncing_contacts.Settings = field(default_factory=bouncing_contacts.Settings)
    departed_champion: departed_champions.Settings = field(
        default_factory=departed_champions.Settings
    )
    single_threaded_account: single_threaded.Settings = field(
        default_factory=single_threaded.Settings
    )
    coverage: coverage.Settings = field(default_factory=coverage.Settings)

    @classmethod
    def from_tables(cls, tables: Mapping[str, Any]) -> RuleSettings:
        """Build from sync.toml's `[rules]` table: its own keys (CommonSettings) and
        sub-tables `[rules.<name>]`. Raises ValueError naming the key and the fix."""
        if not isinstance(tables, Mapping):
            raise ValueError(f"[rules] must be a table, not {tables!r}.")
        sub = {f.name: f.type for f in dataclasses.fields(cls) if f.name != "common"}
        common_keys = [f.name for f in dataclasses.fields(CommonSettings)]
        scalars: dict[str, Any] = {}
        parts: dict[str, Any] = {}
        for key, value in tables.items():
            if key in sub:
                parts[key] = from_table(_settings_class(key), value, f"[rules.{key}]")
            elif key in common_keys:
                scalars[key] = value
            else:
                raise unknown_key_error(key, [*common_keys, *sub], "[rules]")
        return cls(common=from_table(CommonSettings, scalars, "[rules]"), **parts)

    def for_rule(self, name: str) -> Any:
        return getattr(self, name)


def _settings_class(table: str) -> type:
    return {
        "tiers": tiers.Settings,
        "suppression": SuppressionSettings,
        "stale_contact": stale_contacts.Settings,
        "bouncing_contact": bouncing_contacts.Settings,
        "departed_champion": departed_champions.Settings,
        "single_threaded_account": single_threaded.Settings,
        "coverage": coverage.Settings,
    }[table]


class ContactStatus(NamedTuple):
    """What is written back on a contact: status, and a one-sentence reason ("" when ok)."""

    status: HygieneStatus
    reason: str


@dataclass(frozen=True)
class AccountResult:
    account_id: str
    crm: str
    flags: tuple[Flag, ...]  # sorted by (rule order, subject_id); suppressed ones included
    coverage: Coverage
    contact_status: Mapping[str, ContactStatus]  # every current contact, by id (sorted)
    facts: Facts = field(repr=False, compare=False)
    # The parts of the coverage score and what capped its status (the leader report).
    coverage_breakdown: CoverageBreakdown | None = field(default=None, repr=False, compare=False)

    @property
    def hygiene_summary(self) -> str:
        """One stable line for the account's hygiene summary field (open findings only).

        e.g. "1 departed champion, 2 stale contacts; relies on too few people."
        """
        open_ = [f for f in self.flags if not f.suppressed and f.severity is not Severity.INFO]
        n = Counter(f.rule for f in open_)
        parts = [
            explain.count(n[departed_champions.NAME], "departed champion"),
            explain.count(n[bouncing_contacts.NAME], "bouncing contact"),
            explain.count(n[stale_contacts.NAME], "stale contact"),
        ]
        listed = ", ".join(p for p in parts if not p.startswith("0 "))
        single = "relies on too few people" if n[single_threaded.NAME] else ""
        text = "; ".join(p for p in (listed, single) if p)
        return f"{text[0].upper()}{text[1:]}." if text else "No open hygiene issues."


def evaluate_account(
    view: AccountView,
    settings: RuleSettings | None = None,
    as_of: datetime | None = None,
    *,
    domain_check: DomainCheck | None = None,
) -> AccountResult:
    """Every finding, the coverage and the contact statuses of one account, as of `as_of`.

    `domain_check` is used only when `[rules.bouncing_contact] check_deliverability`
    is on (sync/ passes `bouncing_contacts.dns_domain_check()`); without it that
    check is skipped.
    """
    if as_of is None:
        raise ValueError("as_of is required: rules never read the clock")
    s = settings or RuleSettings()
    role_names = (*s.departed_champion.champion_roles, *s.single_threaded_account.required_roles)
    facts = context.start(view, s.common, s.tiers, as_of, role_names)
    facts = dataclasses.replace(
        facts, bounces=bouncing_contacts.find(view, s.bouncing_contact, facts, domain_check)
    )
    facts = departed_champions.learn(view, s.departed_champion, facts)

    flags: list[Flag] = []
    if view.account.deleted_at is None:
        for rule in RULES:
            flags.extend(rule.evaluate(view, s.for_rule(rule.NAME), as_of, facts))
    flags = _suppress(flags, view, facts, s.suppression)
    order = {name: i for i, name in enumerate(RULE_NAMES)}
    flags.sort(key=lambda f: (order.get(f.rule, len(order)), f.subject_id))

    cov = coverage.breakdown(
        view,
        s.coverage,
        as_of,
        facts,
        target_engaged=single_threaded.min_engaged_for(s.single_threaded_account, facts.tier),
        required_roles=s.single_threaded_account.required_roles,
        stale_window_days=stale_contacts.window_days(s.stale_contact, facts.tier),
        departed_champions=sum(
            1 for f in flags if f.rule == departed_champions.NAME and not f.suppressed
        ),
    )
    return AccountResult(
        account_id=view.id,
        crm=view.crm,
        flags=tuple(flags),
        coverage=cov.coverage,
        contact_status=_contact_status(view, flags, facts, s),
        facts=facts,
        coverage_breakdown=cov,
    )


def evaluate_accounts(
    views: Iterable[AccountView],
    settings: RuleSettings | None = None,
    as_of: datetime | None = None,
    *,
    domain_check: DomainCheck | None = None,
) -> Iterator[AccountResult]:
    """`evaluate_account` over a stream of views (lazily: memory stays flat)."""
    for view in views:
        yield evaluate_account(view, settings, as_of, domain_check=domain_check)


# ---------------------------------------------------------------- suppression


def _suppress(
    flags: list[Flag], view: AccountView, facts: Facts, settings: SuppressionSettings
) -> list[Flag]:
    account_ex = exemptions(view.account.exemption, settings, facts.today)
    out: list[Flag] = []
    for f in flags:
        why = _why(f.rule, account_ex, "account")
        if why is None and f.contact_id is not None:
            contact = facts.contacts.get(f.contact_id) or facts.former.get(f.contact_id)
            if contact is not None and contact.exemption:
                why = _why(f.rule, exemptions(contact.exemption, settings, facts.today), "contact")
        if why is not None:
            f = dataclasses.replace(
                f, suppressed=True, evidence={**f.evidence, "suppressed_because": why}
            )
        out.append(f)
    return out


def _why(rule: str, ex: Mapping[str, str], where: str) -> str | None:
    reason = ex.get(rule) or ex.get(ALL_RULES)
    return f"{where} {reason}" if reason else None


# ---------------------------------------------------------------- contact status


def _contact_status(
    view: AccountView, flags: list[Flag], facts: Facts, s: RuleSettings
) -> dict[str, ContactStatus]:
    """Most severe of ok < stale < bouncing < departed, per current contact.

    The status states facts, so suppressed findings still set it (suppression
    only keeps tasks away); notes (severity info) leave it ok. A departed contact
    who holds no champion role has no finding but is still "departed".
    """
    best: dict[str, ContactStatus] = {
        cid: ContactStatus(HygieneStatus.OK, "") for cid in facts.contacts
    }
    for f in flags:
        status = _STATUS_BY_RULE.get(f.rule)
        if status is None or f.contact_id not in best or not _counts_for_status(f):
            continue
        _keep_worse(best, f.contact_id, ContactStatus(status, str(f.evidence.get("summary", ""))))
    for cid in facts.departed:
        if cid in best and best[cid].status is not HygieneStatus.DEPARTED:
            reason = departed_champions.reason(
                view, facts.departures[cid], facts, s.departed_champion
            )
            _keep_worse(best, cid, ContactStatus(HygieneStatus.DEPARTED, reason))
    return dict(sorted(best.items()))


def _counts_for_status(f: Flag) -> bool:
    return f.rule != bouncing_contacts.NAME or bool(f.evidence.get("bouncing"))


def _keep_worse(best: dict[str, ContactStatus], cid: str, new: ContactStatus) -> None:
    if _STATUS_RANK[new.status] > _STATUS_RANK[best[cid].status]:
        best[cid] = new


__all__ = [
    "RULES",
    "RULE_NAMES",
    "AccountResult",
    "ContactStatus",
    "DomainCheck",
    "RuleSettings",
    "evaluate_account",
    "evaluate_accounts",
]
