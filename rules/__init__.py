"""The hygiene rules: pure functions from one account's mirror rows to findings.

`evaluate_account(view, settings, as_of)` is the one entry point. It

1. works out the account's shared facts (`rules/context.py`): tier, renewal,
   buying roles that count;
2. asks `bouncing_contacts` who is bouncing and `departed_champions` who has
   left, so every later rule sees the same active and engaged contacts;
3. runs each rule in `RULES` (`evaluate(view, settings, as_of, facts)`);
4. marks findings the account manager snoozed or exempted as suppressed
   (`rules/suppression.py`), adds to each followed-up departed champion and
   missing role who at the account could take the role (`rules/successors.py`),
   computes coverage and each contact's hygiene status, and writes the
   account's hygiene summary.

Suppression decides what is followed up, not what is true: coverage counts
snoozed and exempt problems as if they were open, contacts keep their status
with the reason saying they are snoozed or exempt, and the hygiene summary names
the snooze or exemption and what it holds back (rules/suppression.py).

No I/O, no clock, no logging: `as_of` is the time, settings come from
`RuleSettings.from_tables` (the `[rules]` part of sync.toml), and the same inputs
always give the same, identically ordered output.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, NamedTuple

from crmsync.state.model import AccountView, Coverage, Flag, HygieneStatus, Severity, Tier

from . import (
    bouncing_contacts,
    context,
    coverage,
    departed_champions,
    explain,
    single_threaded,
    stale_contacts,
    successors,
    suppression,
    tiers,
)
from .bouncing_contacts import DomainCheck
from .context import Facts, Renewal
from .coverage import Breakdown as CoverageBreakdown
from .registry import RULE_NAMES, RULES
from .settings import (
    ALL_RULES,
    CommonSettings,
    SuppressionSettings,
    from_table,
    unknown_key_error,
)
from .suppression import Entries, Suppression

# Which hygiene status each contact-level rule stands for (info notes stay ok).
_STATUS_BY_RULE = {
    stale_contacts.NAME: HygieneStatus.STALE,
    bouncing_contacts.NAME: HygieneStatus.BOUNCING,
    departed_champions.NAME: HygieneStatus.DEPARTED,
}
_STATUS_RANK = {s: i for i, s in enumerate(HygieneStatus)}
# The rules' order: findings are sorted by it, then by subject.
_ORDER = {name: i for i, name in enumerate(RULE_NAMES)}

# One rule run over one account: (view, as_of, facts) -> its flags.
RuleRun = Callable[[AccountView, datetime, Facts], Iterable[Flag]]


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
    successors: successors.Settings = field(default_factory=successors.Settings)

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

    @cached_property
    def runs(self) -> Mapping[str, RuleRun]:
        """Each rule's `evaluate` with its own settings, by rule name (typed: a settings
        table renamed or a rule added without one fails mypy, not at run time)."""
        return {
            bouncing_contacts.NAME: lambda view, as_of, facts: bouncing_contacts.evaluate(
                view, self.bouncing_contact, as_of, facts
            ),
            departed_champions.NAME: lambda view, as_of, facts: departed_champions.evaluate(
                view, self.departed_champion, as_of, facts
            ),
            stale_contacts.NAME: lambda view, as_of, facts: stale_contacts.evaluate(
                view, self.stale_contact, as_of, facts
            ),
            single_threaded.NAME: lambda view, as_of, facts: single_threaded.evaluate(
                view, self.single_threaded_account, as_of, facts
            ),
        }


def _settings_class(table: str) -> type:
    shared: dict[str, type] = {
        "tiers": tiers.Settings,
        "suppression": SuppressionSettings,
        "coverage": coverage.Settings,
        "successors": successors.Settings,
    }
    return shared.get(table) or {r.NAME: r.Settings for r in RULES}[table]


class ContactStatus(NamedTuple):
    """What is written back on a contact: status, and a one-sentence reason ("" when ok)."""

    status: HygieneStatus
    reason: str


# Most contacts are ok: one shared value (a tuple: nothing can change it in place).
_OK = ContactStatus(HygieneStatus.OK, "")


@dataclass(frozen=True)
class AccountResult:
    account_id: str
    crm: str
    flags: tuple[Flag, ...]  # sorted by (rule order, subject_id); suppressed ones included
    coverage: Coverage
    contact_status: Mapping[str, ContactStatus]  # every current contact, by id (sorted)
    # The parts of the coverage score and what capped its status (the leader report).
    coverage_breakdown: CoverageBreakdown = field(repr=False, compare=False)
    tier: Tier  # the account's tier under [rules.tiers] (what the planner and reports read)
    renewal: Renewal | None  # the renewal date or opportunity close that counts, if any
    # The facts the rules shared (the whole account view: every contact, role and change).
    # sync/evaluate.py drops them (None) so a run does not hold the mirror in memory.
    facts: Facts | None = field(default=None, repr=False, compare=False)
    # One stable text for the account's hygiene summary field: the open findings,
    # then what a snooze or an exemption holds back, then snoozes that could not
    # be read, e.g. "1 departed champion, 2 stale contacts; relies on too few people."
    hygiene_summary: str = "No open hygiene issues."


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
        for name in RULE_NAMES:
            flags.extend(s.runs[name](view, as_of, facts))
    entries = _Entries.read(view, facts, s.suppression)
    flags, why = _suppress(flags, entries)
    # Who could take a departed champion's role, or a missing one (rules/successors.py).
    flags = successors.attach(
        view,
        flags,
        facts,
        s.successors,
        s.departed_champion.champion_roles,
        _marked_not_champion(entries),
    )
    flags.sort(key=lambda f: (_ORDER.get(f.rule, len(_ORDER)), f.subject_id))

    # Coverage tells the truth: a snoozed or exempt problem still counts; only
    # "not a champion" (a correction of the facts) takes a departed champion out.
    departed = sum(
        1
        for f in flags
        if f.rule == departed_champions.NAME
        and not (why and f.key in why and why[f.key].corrects_facts)
    )
    account_ex = entries.account.rules
    cov = coverage.breakdown(
        view,
        s.coverage,
        as_of,
        facts,
        target_engaged=single_threaded.min_engaged_for(s.single_threaded_account, facts.tier),
        required_roles=s.single_threaded_account.required_roles,
        stale_window_days=stale_contacts.window_days(s.stale_contact, facts.tier),
        departed_champions=departed,
        note=suppression.coverage_note(
            account_ex.get(ALL_RULES),
            [account_ex[r] for r in RULE_NAMES if r in account_ex],
        ),
    )
    return AccountResult(
        account_id=view.id,
        crm=view.crm,
        flags=tuple(flags),
        coverage=cov.coverage,
        contact_status=_contact_status(view, flags, why, entries, facts, s),
        tier=facts.tier,
        renewal=facts.renewal,
        facts=facts,
        hygiene_summary=_hygiene_summary(flags, why, entries, facts, s.suppression),
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


@dataclass(frozen=True)
class _Entries:
    """The exemption fields of one account and its contacts, read as of the run date."""

    account: Entries
    contacts: Mapping[str, Entries]  # current and moved-away contacts with a value set
    settings: SuppressionSettings

    @classmethod
    def read(cls, view: AccountView, facts: Facts, settings: SuppressionSettings) -> _Entries:
        people = {**facts.former, **facts.contacts}
        return cls(
            account=suppression.read(view.account.exemption, settings, facts.today),
            contacts={
                cid: suppression.read(c.exemption, settings, facts.today)
                for cid, c in sorted((cid, c) for cid, c in people.items() if c.exemption)
            },
            settings=settings,
        )


def _suppress(flags: list[Flag], entries: _Entries) -> tuple[list[Flag], dict[str, Suppression]]:
    """Mark the findings an entry covers; {flag key: why} for each one marked.

    "not a champion" wins (it says the finding is wrong), then the account's
    entries (they cover every contact), then the contact's own.
    """
    out: list[Flag] = []
    why: dict[str, Suppression] = {}
    if not entries.account.rules and not any(e.rules for e in entries.contacts.values()):
        return list(flags), why  # most accounts: no entry in force, nothing to mark
    for f in flags:
        mine = entries.contacts.get(f.contact_id or "", suppression.NOTHING)
        s = _not_champion(f.rule, entries.account, "account") or _not_champion(
            f.rule, mine, "contact"
        )
        if s is None:
            ex = entries.account.covering(f.rule)
            s = Suppression(ex, "account") if ex else None
        if s is None and f.contact_id is not None:
            ex = mine.covering(f.rule)
            s = Suppression(ex, "contact") if ex else None
        if s is not None:
            f = dataclasses.replace(
                f, suppressed=True, evidence={**f.evidence, "suppressed_because": s.why()}
            )
            why[f.key] = s
        out.append(f)
    return out, why


def _marked_not_champion(entries: _Entries) -> frozenset[str]:
    """Contacts whose own exemption field says "not a champion" (never suggested as one)."""
    return frozenset(
        cid
        for cid, e in entries.contacts.items()
        if (ex := e.rules.get(departed_champions.NAME)) is not None
        and ex.kind is suppression.Kind.NOT_CHAMPION
    )


def _not_champion(rule: str, entries: Entries, where: str) -> Suppression | None:
    ex = entries.rules.get(rule)
    if ex is not None and ex.kind is suppression.Kind.NOT_CHAMPION:
        return Suppression(ex, where)
    return None


def _hygiene_summary(
    flags: list[Flag],
    why: Mapping[str, Suppression],
    entries: _Entries,
    facts: Facts,
    settings: SuppressionSettings,
) -> str:
    """The account's hygiene summary: what is open, what a snooze or exemption holds back,
    and any snooze that could not be read. Stable for unchanged data (absolute dates)."""
    problems = [f for f in flags if f.severity is not Severity.INFO]
    open_ = Counter(f.rule for f in problems if not f.suppressed)
    on_account: dict[suppression.Exemption, Counter[str]] = {}
    on_contacts: Counter[str] = Counter()
    contact_kinds: set[suppression.Kind] = set()
    contact_ids: set[str] = set()
    for f in problems:
        s = why.get(f.key) if why else None  # (a key is formatted on each read)
        if s is None or s.corrects_facts:
            continue
        if s.where == "account":
            on_account.setdefault(s.exemption, Counter())[f.rule] += 1
        else:
            on_contacts[f.rule] += 1
            contact_kinds.add(s.exemption.kind)
            contact_ids.add(f.contact_id or f.subject_id)
    for ex in entries.account.rules.values():  # in force, even with nothing to hold back
        if ex.kind is not suppression.Kind.NOT_CHAMPION:
            on_account.setdefault(ex, Counter())

    sentences: list[str] = []
    everything = entries.account.rules.get(ALL_RULES)
    if everything is not None:
        sentences.append(suppression.account_sentence(everything, on_account.pop(everything)))
    if open_:
        sentences.append(_open_findings(open_))
    elif everything is None:
        sentences.append("No open hygiene issues.")
    for ex in sorted(on_account, key=lambda e: _ORDER.get(e.rule, len(_ORDER))):
        sentences.append(suppression.account_sentence(ex, on_account[ex]))
    if on_contacts:
        sentences.append(
            suppression.contacts_sentence(contact_kinds, len(contact_ids), on_contacts)
        )
    if entries.account.unreadable:
        sentences.append(suppression.unreadable_account(entries.account.unreadable, settings))
    unread = [
        facts.contacts[cid].name
        for cid, e in entries.contacts.items()
        if e.unreadable and cid in facts.contacts
    ]
    if unread:
        sentences.append(suppression.unreadable_contacts(unread, settings))
    return " ".join(sentences)


def _open_findings(n: Counter[str]) -> str:
    """`1 departed champion, 2 stale contacts; relies on too few people.`"""
    parts = [
        explain.count(n[departed_champions.NAME], "departed champion"),
        explain.count(n[bouncing_contacts.NAME], "bouncing contact"),
        explain.count(n[stale_contacts.NAME], "stale contact"),
    ]
    listed = ", ".join(p for p in parts if not p.startswith("0 "))
    single = "relies on too few people" if n[single_threaded.NAME] else ""
    text = "; ".join(p for p in (listed, single) if p)
    return f"{text[0].upper()}{text[1:]}."


# ---------------------------------------------------------------- contact status


def _contact_status(
    view: AccountView,
    flags: list[Flag],
    why: Mapping[str, Suppression],
    entries: _Entries,
    facts: Facts,
    s: RuleSettings,
) -> dict[str, ContactStatus]:
    """Most severe of ok < stale < bouncing < departed, per current contact.

    The status states facts, so suppressed findings still set it (suppression
    only keeps tasks away), and the reason then says why it is not followed up
    ("Snoozed until 31 January 2027 by the account team: not followed up until
    then."). Notes (severity info) leave it ok. A departed contact who holds no
    champion role has no finding but is still "departed". A contact whose own
    snooze could not be read and who has a status is told so in the reason.
    """
    best = dict.fromkeys(facts.contacts, _OK)
    for f in flags:
        status = _STATUS_BY_RULE.get(f.rule)
        if status is None or f.contact_id not in best or not _counts_for_status(f):
            continue
        reason = str(f.evidence.get("summary", ""))
        if why and f.key in why:
            reason = explain.paragraph(reason, suppression.contact_note(why[f.key]))
        _keep_worse(best, f.contact_id, ContactStatus(status, reason))
    for cid in facts.departed:
        if cid in best and best[cid].status is not HygieneStatus.DEPARTED:
            reason = departed_champions.reason(
                view, facts.departures[cid], facts, s.departed_champion
            )
            _keep_worse(best, cid, ContactStatus(HygieneStatus.DEPARTED, reason))
    for cid, e in entries.contacts.items():
        if e.unreadable and cid in best and best[cid].status is not HygieneStatus.OK:
            note = suppression.unreadable_contact(e.unreadable, s.suppression)
            best[cid] = best[cid]._replace(reason=explain.paragraph(best[cid].reason, note))
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
