"""Outside people-data providers: more names for a role the CRM cannot fill (docs/successors.md).

Off by default. With `[enrichment] provider = "<name>"`, a run asks that provider
about the accounts that need someone, before the rules run:

- only accounts with a followed-up departed champion, or a single-threaded
  account missing a required role, where the CRM holds fewer than
  `[rules.successors] max_suggestions` people who fit (rules/successors.py);
- one call per (account, role), at most `max_calls_per_run` calls per run and
  CRM (the rest wait for the next run, logged);
- an answer (also "nobody") is cached in the mirror (state/enrichment.py) and
  asked again only after `refresh_days`; an answer older than that which no run
  asked again, another provider's, and everything once enrichment is turned off,
  is forgotten (outside people are personal data).

The rules then list those people apart from the CRM's, marked as outside data with
their source: nobody is written to the CRM.

Like the rules (sync/evaluate.py), a run works out the needs only of the accounts that
can have changed since the last run; the others' are kept in the mirror from the runs
before (with those left for a later run). `sync --full` and a change to these settings
work them all out again.

A provider is an entry point in the `crmsync.enrichment` group: a callable taking
the `EnrichmentSettings` and returning an object with
`candidates(domain, role) -> Iterable[OutsidePerson]`. crmsync ships `csv`
(`CsvProvider`), which reads a CSV file the user supplies; another package adds its
own in its pyproject.toml:

    [project.entry-points."crmsync.enrichment"]
    acme = "acme_people.crmsync:AcmeProvider"

Tests use a loopback fake registered the same way (tests/e2e/fake_people.py).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol

import sqlite_utils

from crmsync import rules
from crmsync.rules import RuleSettings, successors
from crmsync.rules.context import in_domain
from crmsync.state import enrichment as cache
from crmsync.state import views
from crmsync.state.model import OutsidePerson
from crmsync.state.text import site_domain

log = logging.getLogger(__name__)

GROUP = "crmsync.enrichment"


@dataclass(frozen=True)
class EnrichmentSettings:
    """[enrichment]: an outside people-data provider (off unless `provider` is set)."""

    provider: str = ""  # an entry point's name in the crmsync.enrichment group; "" = off
    csv_path: Path | None = None  # the csv provider's file (relative to sync.toml's folder)
    max_calls_per_run: int = 20  # calls to the provider per run and CRM
    refresh_days: int = 30  # ask again about an (account, role) after this many days

    def validate(self) -> None:
        if self.max_calls_per_run < 0:
            raise ValueError(
                f"max_calls_per_run = {self.max_calls_per_run}: use a whole number, 0 or more."
            )
        if self.refresh_days < 1:
            raise ValueError(f"refresh_days = {self.refresh_days}: use a whole number, 1 or more.")
        if self.provider == "csv" and self.csv_path is None:
            raise ValueError(
                'provider = "csv" needs csv_path, the CSV file of people '
                "(columns domain, name, title, email, role)."
            )

    @property
    def enabled(self) -> bool:
        return bool(self.provider.strip())


class Provider(Protocol):
    def candidates(self, domain: str, role: str) -> Iterable[OutsidePerson]: ...


ProviderFactory = Callable[[EnrichmentSettings], Provider]


class ProviderError(Exception):
    """The configured provider cannot be found or started."""


def load_provider(settings: EnrichmentSettings) -> Provider:
    """The provider named by `settings.provider`, from the crmsync.enrichment entry points."""
    found = [ep for ep in entry_points(group=GROUP) if ep.name == settings.provider]
    if not found:
        names = sorted({ep.name for ep in entry_points(group=GROUP)})
        raise ProviderError(
            f"[enrichment] provider = {settings.provider!r}: no such provider is installed "
            f"(installed: {', '.join(names) or 'none'})."
        )
    factory: ProviderFactory = found[0].load()
    try:
        return factory(settings)
    except (OSError, ValueError) as e:
        raise ProviderError(f"[enrichment] provider {settings.provider!r}: {e}") from e


# ---------------------------------------------------------------- the CSV provider


class CsvProvider:
    """People from a CSV file the user supplies: columns `domain`, `name`, `title`, `email`,
    and optionally `role` (blank: any role) and `source` (where the row came from).
    A row matches an account whose domain is the row's domain or a subdomain of it."""

    COLUMNS = ("domain", "name", "title", "email", "role", "source")

    def __init__(self, settings: EnrichmentSettings) -> None:
        if settings.csv_path is None:
            raise ValueError("csv_path is not set")
        self.path = Path(settings.csv_path)
        self.rows: list[dict[str, str]] = []
        with self.path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            header = {(h or "").strip().casefold() for h in reader.fieldnames or ()}
            if not {"domain", "name"} <= header:
                raise ValueError(f"{self.path} needs a header row with at least domain and name")
            for row in reader:
                clean = {
                    (k or "").strip().casefold(): (v or "").strip()
                    for k, v in row.items()
                    if isinstance(v, str)
                }
                if clean.get("domain") and clean.get("name"):
                    self.rows.append(clean)

    def candidates(self, domain: str, role: str) -> list[OutsidePerson]:
        home = site_domain(domain)
        out = []
        for r in self.rows:
            row_domain = site_domain(r["domain"])
            if not in_domain(home, row_domain):
                continue
            if r.get("role") and r["role"].casefold() != role.casefold():
                continue
            source = r.get("source") or f"CSV file {self.path.name}"
            out.append(
                OutsidePerson(role, r["name"], r.get("title") or None, r.get("email") or None, source)
            )
        return out


# ---------------------------------------------------------------- the pass before the rules


@dataclass
class EnrichmentReport:
    provider: str = ""
    calls: int = 0
    found: int = 0  # people stored
    cached: int = 0  # lookups answered from the cache
    over_budget: int = 0  # lookups left for a later run
    failed: int = 0
    forgotten: int = 0  # cached lookups dropped: stale, another provider's, or enrichment off
    asked: list[tuple[str, str]] = field(default_factory=list)  # (domain, role), in order


def needed(
    db: sqlite_utils.Database,
    crm: str,
    rule_settings: RuleSettings,
    as_of: datetime,
    account_ids: Collection[str] | None = None,
) -> list[tuple[str, str, str]]:
    """(account id, domain, role) of every lookup the rules would like, as of `as_of`
    (of `account_ids` only, if given)."""
    out: list[tuple[str, str, str]] = []
    cap = rule_settings.successors.max_suggestions
    roles = rule_settings.departed_champion.champion_roles
    for view in views.iter_account_views(db, crm, account_ids=account_ids):
        domain = site_domain(view.account.domain)
        if domain is None:
            continue
        result = rules.evaluate_account(view, rule_settings, as_of)
        if result.facts is None:
            continue
        seen: set[str] = set()
        for f in result.flags:
            if f.suppressed:
                continue
            found = {
                str(s.get("role", "")).casefold(): len(s.get("candidates") or [])
                for s in f.evidence.get("successors") or []
                if isinstance(s, dict)
            }
            for role in successors.wanted_roles(f, result.facts, roles):
                key = role.casefold()
                if key in seen or found.get(key, 0) >= cap:
                    continue
                seen.add(key)
                out.append((view.id, domain, role))
    return out


def enrich(
    db: sqlite_utils.Database,
    crm: str,
    rule_settings: RuleSettings,
    settings: EnrichmentSettings,
    *,
    as_of: datetime,
    now: datetime,
    provider: Provider | None = None,
    accounts: Collection[str] | None = None,
) -> EnrichmentReport:
    """Ask the provider about the accounts that need someone; cache the answers (commits).

    `accounts`: the only accounts whose needs can have changed since the last run (the
    run's scope, sync/evaluate.py `run_scope`; None: any). Their wants are worked out
    again; the other accounts' are kept from the runs before (state/enrichment.py
    `wants`), also those left for a later run (over the budget, failed, or expired)."""
    report = EnrichmentReport(settings.provider)
    if not settings.enabled:
        report.forgotten = cache.prune(db, crm, "")
        cache.set_wants(db, crm, [])
        return report
    fresh_since = now - timedelta(days=settings.refresh_days)
    # What no run asked again within refresh_days (nobody needed it), and another provider's.
    report.forgotten = cache.prune(db, crm, settings.provider, before=fresh_since)
    cache.set_wants(db, crm, needed(db, crm, rule_settings, as_of, accounts), accounts)
    wanted = cache.wants(db, crm)
    if not wanted:
        return report
    if provider is None:
        provider = load_provider(settings)
    asked = cache.fetched_at(db, crm, settings.provider)
    for account_id, domain, role in wanted:
        last = asked.get((account_id, role.casefold()))
        if last is not None and last >= fresh_since:
            report.cached += 1
            continue
        if report.calls >= settings.max_calls_per_run:
            report.over_budget += 1
            continue
        report.calls += 1
        report.asked.append((domain, role))
        try:
            people = list(provider.candidates(domain, role))
        except Exception as e:  # an outside provider's failure never stops the run
            report.failed += 1
            log.warning(
                "enrichment provider failed",
                extra={"crm": crm, "provider": settings.provider, "error": type(e).__name__},
            )
            continue
        people = [p for p in people if isinstance(p, OutsidePerson)]
        report.found += cache.store(
            db, crm, account_id, role, settings.provider, domain, people, now
        )
    log.info(
        "enrichment done",
        extra={
            "crm": crm,
            "provider": settings.provider,
            "calls": report.calls,
            "found": report.found,
            "cached": report.cached,
            "over_budget": report.over_budget,
            "failed": report.failed,
        },
    )
    return report
