"""The leader report's figures: the book at a glance, per owner, the top risks, each account.

`crmsync report` (sync/cli.py) builds a `Book` from the mirror and renders it
as one self-contained HTML page (sync/leader_html.py) or as Markdown for a
chat or an e-mail (sync/leader_md.py). Both show the same figures.

What a sales or CS leader reads, and where it comes from:

- the date: the rules' as-of time of each CRM's last evaluation (runs.as_of),
  never the wall clock: the page says what the rules saw;
- coverage: each account's view (state/views.py) evaluated by the rules as of
  that date, which also says why the score is what it is (rules/coverage.py
  `Breakdown`: the parts of the score and any cap);
- findings: the open flags the last run stored (state/flags.py), in words;
- tasks: crmsync's tasks in the mirror, with their owners' names (state/book.py);
- top risks: open departed-champion and single-threaded findings of accounts
  with a renewal, or an open opportunity closing, within the renewal window
  (`[rules] renewal_window_days`), by severity, then by how soon;
- the trend: open findings at each evaluated run (from the flags' first_seen
  and resolved_at) and coverage (from each run's counts);
- links: a record URL per account, built from what the pull stored about the
  CRM (state/crm_info.py), so the page works offline.

Names, not ids: an account, a contact and an owner are shown by name; an id
appears only where the CRM holds no name at all. CRM text is made printable
here and escaped by the renderers.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import sqlite_utils

from crmsync import rules
from crmsync.rules import bouncing_contacts, departed_champions, single_threaded, stale_contacts
from crmsync.rules import coverage as coverage_rule
from crmsync.rules.explain import day as day
from crmsync.rules.explain import (
    short_day as short_day,  # re-exported: the HTML and Markdown views use them
)
from crmsync.state import book, crm_info, runs, views
from crmsync.state import flags as flag_store
from crmsync.state.errors import MirrorError, UsageError
from crmsync.state.model import AccountView, CoverageStatus, Owner, Severity, Tier
from crmsync.state.text import ACCOUNT_MAX, NAME_MAX, clip, printable

from .config import Config

# An account id -> the URL of its record page in the CRM
RecordLink = Callable[[str], str]

# ---------------------------------------------------------------- words

CRM_NAMES = {"salesforce": "Salesforce", "hubspot": "HubSpot"}
RULE_WORDS = {
    departed_champions.NAME: "Departed champion",
    single_threaded.NAME: "Single-threaded account",
    stale_contacts.NAME: "Stale contact",
    bouncing_contacts.NAME: "Bouncing contact",
}
SEVERITIES: tuple[Severity, ...] = tuple(sorted(Severity, key=lambda s: -s.rank))  # critical first
SEVERITY_WORDS = {s: s.value.capitalize() for s in Severity}
STATUSES: tuple[CoverageStatus, ...] = (
    CoverageStatus.GREEN,
    CoverageStatus.AMBER,
    CoverageStatus.RED,
)
TIERS: tuple[Tier, ...] = (Tier.STRATEGIC, Tier.GROWTH, Tier.MAINTENANCE, Tier.NONE)
TIER_WORDS = {
    Tier.STRATEGIC: "Strategic",
    Tier.GROWTH: "Growth",
    Tier.MAINTENANCE: "Maintenance",
    Tier.NONE: "No tier",
}
# The rules whose findings make a top risk when the account renews soon.
RISK_RULES = (departed_champions.NAME, single_threaded.NAME)
# Task status values as the CRMs store them (Salesforce picklist labels, HubSpot
# hs_task_status enums) in words; anything else is worded by `enum_words`.
_TASK_STATUS = {
    "not_started": "Not started",
    "in_progress": "In progress",
    "waiting": "Waiting on someone else",
    "waiting_on_someone_else": "Waiting on someone else",
    "deferred": "Deferred",
    "completed": "Completed",
    "open": "Not started",
}
TOP_RISKS_SHOWN = 25  # the rest are in the accounts' own sections
TREND_RUNS = 60  # evaluated runs the trend reads, at most
ROUND_SECONDS = 3600  # runs of different CRMs this close together are one point of the trend


def rule_words(rule: str) -> str:
    """`single_threaded_account` -> "Single-threaded account"."""
    return RULE_WORDS.get(rule) or enum_words(rule)


def enum_words(value: str | None) -> str:
    """A CRM enum or picklist value in words: NOT_STARTED and "Not Started" -> "Not started"."""
    text = printable(value).strip()
    if not text:
        return ""
    known = _TASK_STATUS.get(re.sub(r"[\s_-]+", "_", text.casefold()))
    if known:
        return known
    words = re.sub(r"[\s_]+", " ", text).strip()
    return words[:1].upper() + words[1:].lower() if words.isupper() or "_" in text else words


def task_status_words(value: str | None) -> str:
    return enum_words(value) or "No status"


def in_days(n: int) -> str:
    """How soon, in words: "today", "in 3 days", "3 days ago"."""
    if n == 0:
        return "today"
    unit = "day" if abs(n) == 1 else "days"
    return f"in {n} {unit}" if n > 0 else f"{-n} {unit} ago"


# ---------------------------------------------------------------- the figures


@dataclass(frozen=True)
class Finding:
    rule: str
    label: str  # the rule in words
    severity: Severity
    who: str  # the contact's name ("" for an account-level finding)
    explanation: str  # printable, one paragraph
    successors: str = ""  # who could take the role, in short ("" when the finding has none)


@dataclass(frozen=True)
class TaskLine:
    subject: str
    owner: str  # the task owner's name
    due_date: date | None
    status: str  # in words
    priority: str  # in words
    overdue: bool


@dataclass
class AccountLine:
    crm: str
    id: str
    name: str  # never an id while the CRM holds a name or a domain
    tier: Tier
    owner_key: str
    status: CoverageStatus
    score: int
    why: str  # the status and any cap, in words
    parts: list[str]  # the score's parts, in words
    stakeholders: int
    findings: list[Finding]
    tasks: list[TaskLine]  # open tasks
    closed_tasks: int
    renewal: date | None  # within the renewal window
    renewal_what: str  # "renews on 1 March 2027" / "opportunity “X” closes on ..."
    renewal_kind: str  # "renewal date" / "opportunity closes"
    link: str | None  # opens the record in the CRM
    anchor: str = ""

    @property
    def worst(self) -> Severity | None:
        return max((f.severity for f in self.findings), key=lambda s: s.rank, default=None)

    @property
    def quiet(self) -> bool:
        """Nothing to act on: green, no finding and no open task."""
        return self.status is CoverageStatus.GREEN and not self.findings and not self.tasks


class _Accounts:
    """What a set of accounts adds up to (an owner's, the whole book's)."""

    accounts: list[AccountLine]

    @property
    def coverage(self) -> Counter[CoverageStatus]:
        return Counter(a.status for a in self.accounts)

    @property
    def open_tasks(self) -> int:
        return sum(len(a.tasks) for a in self.accounts)

    @property
    def overdue_tasks(self) -> int:
        return sum(t.overdue for a in self.accounts for t in a.tasks)


@dataclass
class OwnerLine(_Accounts):
    key: str
    name: str
    active: bool
    anchor: str
    accounts: list[AccountLine] = field(default_factory=list)

    @property
    def findings(self) -> Counter[Severity]:
        return Counter(f.severity for a in self.accounts for f in a.findings)


@dataclass(frozen=True)
class Risk:
    account: AccountLine
    owner: str
    finding: Finding
    when: date
    days: int  # from the as-of day; negative: overdue


@dataclass(frozen=True)
class TrendPoint:
    at: datetime  # when the run started
    findings: int
    serious: int  # critical and high
    coverage: Mapping[CoverageStatus, int] | None  # whole book; None when filtered


@dataclass
class Book(_Accounts):
    as_of: datetime
    as_of_by_crm: dict[str, datetime]
    crms: list[str]
    owner_filter: str | None
    tier_filter: Tier | None
    renewal_window_days: int
    owners: list[OwnerLine]
    risks: list[Risk]
    trend: list[TrendPoint]
    missing_links: list[str]  # CRMs whose record links cannot be built, and why
    not_evaluated: list[str]  # CRMs with accounts in the mirror but no evaluation yet

    @property
    def accounts(self) -> list[AccountLine]:  # type: ignore[override]
        return [a for o in self.owners for a in o.accounts]

    def coverage_by_tier(self) -> list[tuple[Tier, Counter[CoverageStatus]]]:
        out = []
        for tier in TIERS:
            c = Counter(a.status for a in self.accounts if a.tier is tier)
            if c:
                out.append((tier, c))
        return out

    @property
    def findings(self) -> Counter[tuple[str, Severity]]:
        return Counter((f.rule, f.severity) for a in self.accounts for f in a.findings)

    @property
    def filtered(self) -> bool:
        return self.owner_filter is not None or self.tier_filter is not None

    def scope(self) -> str:
        """What the page covers, in words."""
        parts = [" and ".join(CRM_NAMES.get(c, c) for c in self.crms) or "no CRM"]
        if self.owner_filter is not None:
            parts.append(f"accounts owned by {self.owner_filter}")
        if self.tier_filter is not None:
            parts.append(f"{TIER_WORDS[self.tier_filter].lower()} accounts")
        return ", ".join(parts)


# ---------------------------------------------------------------- building


def build(
    cfg: Config, db: sqlite_utils.Database, *, owner: str | None = None, tier: str | None = None
) -> Book:
    """The book from the mirror, as of each CRM's last evaluation; optionally one owner's
    accounts (`owner`: a name, e-mail address or owner id) or one tier's."""
    tier_filter = Tier(tier) if tier else None
    evaluated = {crm: runs.last_evaluation(db, crm) for crm in _crms_in_mirror(db)}
    as_of_by_crm = {
        crm: (run["as_of"] or run["started_at"]) for crm, run in evaluated.items() if run
    }
    if not as_of_by_crm:
        raise MirrorError(
            f"no run has evaluated the rules in {cfg.mirror.path} yet: there is nothing to report",
            fix="Run `crmsync sync` first.",
        )
    all_owners = book.owners(db)
    people = _people(all_owners)
    owner_keys = _match_owner(owner, all_owners, people) if owner is not None else None
    tasks = _group_tasks(book.tasks(db))
    open_flags = _group_flags(flag_store.list_flags(db, status="open"))
    info = crm_info.every(db)
    links, missing = _linkers(cfg, info, as_of_by_crm)
    window = cfg.rules.common.renewal_window_days

    owners: dict[str, OwnerLine] = {}
    for crm, as_of in sorted(as_of_by_crm.items()):
        for view in views.iter_account_views(db, crm):
            result = rules.evaluate_account(view, cfg.rules, as_of)
            if tier_filter is not None and result.tier is not tier_filter:
                continue
            okey = _owner_key(view.owner) if view.owner else ""
            if owner_keys is not None and okey not in owner_keys:
                continue
            line = _account_line(
                view,
                result,
                as_of,
                open_flags.get((crm, view.id), []),
                tasks.get((crm, view.id), []),
                all_owners,
                links.get(crm),
                okey,
            )
            if okey not in owners:
                owners[okey] = _owner_line(okey, view.owner, people)
            owners[okey].accounts.append(line)

    ordered = sorted(owners.values(), key=lambda o: (o.key == "", o.name.casefold(), o.key))
    for i, o in enumerate(ordered, 1):
        o.anchor = f"owner-{i}"
        o.accounts.sort(key=_account_order)
        for j, a in enumerate(o.accounts, 1):
            a.anchor = f"{o.anchor}-account-{j}"
    owner_label = None
    if owner is not None:
        owner_label = ", ".join(o.name for o in ordered) or printable(owner)
    the_book = Book(
        as_of=max(as_of_by_crm.values()),
        as_of_by_crm=as_of_by_crm,
        crms=sorted(as_of_by_crm),
        owner_filter=owner_label,
        tier_filter=tier_filter,
        renewal_window_days=window,
        owners=ordered,
        risks=[],
        trend=[],
        missing_links=missing,
        not_evaluated=sorted(c for c, run in evaluated.items() if run is None),
    )
    the_book.risks = _risks(the_book)
    the_book.trend = _trend(db, the_book)
    return the_book


def _crms_in_mirror(db: sqlite_utils.Database) -> list[str]:
    return sorted(views.counts(db))


def _owner_key(o: Owner) -> str:
    """One person across both CRMs: by e-mail address when there is one."""
    email = (o.email or "").strip().casefold()
    return f"email:{email}" if email else f"{o.crm}:{o.id}"


def _owner_name(o: Owner | None) -> str:
    if o is None:
        return "No owner"
    return clip(o.name, NAME_MAX) or clip(o.email, NAME_MAX) or "Owner without a name"


def _people(all_owners: Mapping[tuple[str, str], Owner]) -> dict[str, list[Owner]]:
    out: dict[str, list[Owner]] = {}
    for o in all_owners.values():
        out.setdefault(_owner_key(o), []).append(o)
    return out


def _owner_line(key: str, owner: Owner | None, people: Mapping[str, list[Owner]]) -> OwnerLine:
    if not key or owner is None:
        return OwnerLine("", "No owner", True, "")
    same = people.get(key, [owner])
    return OwnerLine(key, _owner_name(owner), any(o.active for o in same), "")


def _match_owner(
    wanted: str, all_owners: Mapping[tuple[str, str], Owner], people: Mapping[str, list[Owner]]
) -> set[str]:
    """The people `--owner` names: by name, e-mail address or owner id (any case)."""
    w = " ".join(wanted.split()).casefold()
    keys = {
        _owner_key(o)
        for o in all_owners.values()
        if w
        in {
            " ".join((o.name or "").split()).casefold(),
            (o.email or "").casefold(),
            o.id.casefold(),
        }
    }
    if keys:
        return keys
    names = sorted({_owner_name(os[0]) for os in people.values()}, key=str.casefold)
    shown = ", ".join(names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "")
    raise UsageError(
        f"--owner {printable(wanted)}: no account owner has that name, e-mail address or id",
        fix=f"Owners in the mirror: {shown or 'none'}.",
    )


def _group_flags(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for f in rows:
        out.setdefault((f["crm"], f["account_id"]), []).append(f)
    return out


def _group_tasks(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for t in rows:
        out.setdefault((t["crm"], t["account_id"] or ""), []).append(t)
    return out


def _account_name(view: AccountView) -> str:
    a = view.account
    return (
        clip(a.name, ACCOUNT_MAX)
        or clip(a.domain, ACCOUNT_MAX)
        or (f"Unnamed account ({CRM_NAMES.get(a.crm, a.crm)} {printable(a.id)})")
    )


def successor_words(evidence: Mapping[str, Any]) -> str:
    """Who could take the role, in short, from a finding's suggestions (rules/successors.py):
    `Champion: Nadia North, Omar Oak; 1 more from outside data` or `Economic Buyer: nobody
    in the CRM fits (add people from the buying committee)`."""
    parts = []
    for s in evidence.get("successors") or []:
        if not isinstance(s, Mapping):
            continue
        role = clip(str(s.get("role") or "the role"), NAME_MAX)
        names = [
            clip(str(c.get("name") or ""), NAME_MAX)
            for c in s.get("candidates") or []
            if isinstance(c, Mapping)
        ]
        outside = len([o for o in s.get("outside") or [] if isinstance(o, Mapping)])
        text = ", ".join(n for n in names if n) or (
            "nobody in the CRM fits (add people from the buying committee)"
        )
        if outside:
            text += f"; {outside} more from outside data"
        parts.append(f"{role}: {text}")
    return printable("; ".join(parts))


def _contact_names(view: AccountView) -> dict[str, str]:
    out = {}
    for c in (*view.contacts, *view.former_contacts):
        out[c.id] = (
            clip(c.display_name(fallback=""), NAME_MAX)
            or clip(c.email, NAME_MAX)
            or "a contact without a name"
        )
    return out


def _account_line(
    view: AccountView,
    result: rules.AccountResult,
    as_of: datetime,
    flags: Sequence[dict[str, Any]],
    tasks: Sequence[dict[str, Any]],
    all_owners: Mapping[tuple[str, str], Owner],
    link: RecordLink | None,
    owner_key: str,
) -> AccountLine:
    b = result.coverage_breakdown
    names = _contact_names(view)
    findings = [
        Finding(
            rule=f["rule"],
            label=rule_words(f["rule"]),
            severity=Severity(f["severity"]),
            who=names.get(f.get("contact_id") or "", "") if f.get("contact_id") else "",
            explanation=" ".join(printable(f["explanation"]).split()),
            successors=successor_words(f.get("evidence") or {}),
        )
        for f in flags
    ]
    findings.sort(
        key=lambda f: (
            -f.severity.rank,
            list(RULE_WORDS).index(f.rule) if f.rule in RULE_WORDS else 9,
            f.who.casefold(),
        )
    )
    today = as_of.date()
    open_tasks = []
    for t in tasks:
        if t["is_closed"]:
            continue
        who = all_owners.get((view.crm, t["owner_id"] or ""))
        open_tasks.append(
            TaskLine(
                subject=clip(t["subject"], 255) or "(no subject)",
                # Without an active account owner a task goes to [writeback] default_owner,
                # else to nobody (HubSpot) or the integration user (Salesforce).
                owner=_owner_name(who) if who else "No active owner",
                due_date=t["due_date"],
                status=task_status_words(t["status"]),
                priority=enum_words(t["priority"]),
                overdue=t["due_date"] is not None and t["due_date"] < today,
            )
        )
    renewal = result.renewal
    what = kind = ""
    if renewal is not None:
        kind = "renewal date" if renewal.opportunity is None else "opportunity closes"
        opp = renewal.opportunity
        if opp is None:
            what = f"renews on {day(renewal.on)}"
        else:
            opp_name = clip(opp.name, ACCOUNT_MAX) or "an open opportunity"
            what = (
                f"opportunity “{opp_name}” closes on {day(renewal.on)}"
                if opp.name
                else (f"an open opportunity closes on {day(renewal.on)}")
            )
    return AccountLine(
        crm=view.crm,
        id=view.id,
        name=_account_name(view),
        tier=result.tier,
        owner_key=owner_key,
        status=b.coverage.status,
        score=b.coverage.score,
        why=coverage_rule.explain_status(b),
        parts=coverage_rule.explain_parts(b),
        stakeholders=b.coverage.stakeholders,
        findings=findings,
        tasks=open_tasks,
        closed_tasks=sum(1 for t in tasks if t["is_closed"]),
        renewal=renewal.on if renewal else None,
        renewal_what=what,
        renewal_kind=kind,
        link=link(view.id) if link else None,
    )


_STATUS_ORDER = {CoverageStatus.RED: 0, CoverageStatus.AMBER: 1, CoverageStatus.GREEN: 2}


def _account_order(a: AccountLine) -> tuple[Any, ...]:
    """Worst first: severity of the worst finding, then a renewal soonest, then coverage."""
    worst = a.worst
    return (
        -(worst.rank if worst is not None else -1),
        a.renewal or date.max,
        _STATUS_ORDER[a.status],
        a.name.casefold(),
        a.crm,
        a.id,
    )


def _risks(b: Book) -> list[Risk]:
    names = {o.key: o.name for o in b.owners}
    out = []
    for a in b.accounts:
        if a.renewal is None:
            continue
        for f in a.findings:
            if f.rule in RISK_RULES:
                as_of = b.as_of_by_crm.get(a.crm, b.as_of).date()
                out.append(
                    Risk(
                        a,
                        names.get(a.owner_key, "No owner"),
                        f,
                        a.renewal,
                        (a.renewal - as_of).days,
                    )
                )
    out.sort(
        key=lambda r: (
            -r.finding.severity.rank,
            r.when,
            r.account.name.casefold(),
            r.account.crm,
            r.account.id,
            r.finding.who.casefold(),
        )
    )
    return out


# ---------------------------------------------------------------- the trend


def _trend(db: sqlite_utils.Database, b: Book) -> list[TrendPoint]:
    """Open findings and coverage at each round of evaluated runs (oldest first).

    A round is a run of each CRM started within ROUND_SECONDS of each other; a
    point is counted only once every CRM of the book had been evaluated. Findings
    are counted from the flags' lifetimes (restricted to the page's accounts
    when filtered); coverage from the runs' own counts (whole book only)."""
    evaluated = [r for r in runs.evaluated(db, TREND_RUNS) if r["crm"] in b.crms]
    if not evaluated:
        return []
    rounds: list[list[dict[str, Any]]] = []
    for r in evaluated:
        last = rounds[-1] if rounds else None
        if (
            last is not None
            and r["crm"] not in {x["crm"] for x in last}
            and (r["started_at"] - last[0]["started_at"]).total_seconds() <= ROUND_SECONDS
        ):
            last.append(r)
        else:
            rounds.append([r])
    selected = {(a.crm, a.id) for a in b.accounts} if b.filtered else None
    lifetimes = [
        f
        for f in flag_store.history(db)
        if f["crm"] in b.crms and (selected is None or (f["crm"], f["account_id"]) in selected)
    ]
    serious = {Severity.CRITICAL.value, Severity.HIGH.value}
    latest: dict[str, dict[str, Any]] = {}
    points = []
    for group in rounds:
        for r in group:
            latest[r["crm"]] = r
        if set(latest) != set(b.crms):
            continue
        at = group[-1]["started_at"]
        open_ = [
            f
            for f in lifetimes
            if f["first_seen"] is not None
            and f["first_seen"] <= at
            and (f["resolved_at"] is None or f["resolved_at"] > at)
        ]
        cov: Counter[CoverageStatus] | None = None
        if not b.filtered:
            cov = Counter()
            for r in latest.values():
                for status, n in (r["coverage"] or {}).items():
                    if status in CoverageStatus._value2member_map_:
                        cov[CoverageStatus(status)] += int(n)
        points.append(
            TrendPoint(at, len(open_), sum(1 for f in open_ if f["severity"] in serious), cov)
        )
    return points


# ---------------------------------------------------------------- links into the CRM


def _linkers(
    cfg: Config, info: Mapping[str, Mapping[str, str]], crms: Iterable[str]
) -> tuple[dict[str, RecordLink], list[str]]:
    """A function account id -> record URL per CRM, and the CRMs without one (and why)."""
    out: dict[str, RecordLink] = {}
    missing: list[str] = []
    for crm in crms:
        known = info.get(crm, {})
        if crm == "salesforce":
            base = _origin(known.get(crm_info.INSTANCE_URL)) or _origin(
                cfg.salesforce_instance_url()
            )
            if base:
                out[crm] = _salesforce_link(base)
            else:
                missing.append(
                    "Salesforce: the instance URL is not known yet (the next sync stores it)"
                )
        elif crm == "hubspot":
            portal = str(known.get(crm_info.PORTAL_ID) or "")
            domain = str(known.get(crm_info.UI_DOMAIN) or "app.hubspot.com")
            if portal.isdigit() and _HOST.fullmatch(domain):
                out[crm] = _hubspot_link(domain, portal)
            else:
                missing.append(
                    "HubSpot: the portal id is not known yet (the next sync asks HubSpot's "
                    "account details for it; the app needs the `oauth` scope)"
                )
    return out, missing


_HOST = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?(?::\d{1,5})?", re.IGNORECASE)


def _origin(url: str | None) -> str | None:
    """`https://host[:port]` of a URL, or None unless it is a plain http(s) URL."""
    if not url:
        return None
    parts = urlsplit(str(url).strip())
    if parts.scheme not in ("https", "http") or not parts.netloc or "@" in parts.netloc:
        return None
    if not _HOST.fullmatch(parts.netloc):
        return None
    return f"{parts.scheme}://{parts.netloc}"


def _salesforce_link(origin: str) -> RecordLink:
    # Lightning Experience record page: /lightning/r/{objectApiName}/{recordId}/{actionName}
    # (Salesforce, "pageReference Types", Record Page type standard__recordPage, URL format;
    # https://developer.salesforce.com/docs/platform/aura-platform/guide/components-navigation-page-definitions.html).
    # A classic instance host (na1.salesforce.com, acme.my.salesforce.com) redirects to
    # the org's lightning.force.com domain.
    def link(record_id: str) -> str:
        return f"{origin}/lightning/r/Account/{quote(record_id, safe='')}/view"

    return link


def _hubspot_link(domain: str, portal: str) -> RecordLink:
    # A HubSpot record page: https://<uiDomain>/contacts/<portalId>/record/<objectTypeId>/<id>,
    # companies being object type 0-2 (HubSpot, "Using object APIs", object type IDs,
    # https://developers.hubspot.com/docs/guides/crm/using-object-apis); portalId and uiDomain
    # from GET /account-info/v3/details (connectors/hubspot/account.py).
    def link(record_id: str) -> str:
        return f"https://{domain}/contacts/{portal}/record/0-2/{quote(record_id, safe='')}"

    return link


__all__ = [
    "AccountLine",
    "Book",
    "Finding",
    "OwnerLine",
    "Risk",
    "TaskLine",
    "TrendPoint",
    "build",
]
