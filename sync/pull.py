"""Pull: connector pages into the mirror, each page committed with its cursor.

For every object, in parent-before-child order:

- a first pull, a `--full` run, or a full pull that a killed run left
  unfinished pulls everything (resuming from the saved checkpoint when there is
  one), stamping each row with the pull's generation; at its last page the rows
  not seen are soft-deleted (state/mirror.py `finish_full`), so a record
  deleted in the CRM while crmsync was away does not linger;
- otherwise an incremental pull from the saved cursor.

A connector that can list association facts no searchable date follows
(HubSpot: a contact's primary company, which may move no date a search could
find; a deal-contact label, which moves none) has them compared with the
mirror after an incremental pull: `company_moves` after the contacts,
`label_changes` after the contact roles. Only the records the mirror
disagrees with are read again and applied like any page.

A connector that can tell an incremental pull may have missed deletions
(`missed_deletes(obj)`: Salesforce, when the cursor is older than the recycle
bin keeps deleted rows, or getDeleted's `earliestDateAvailable` says rows were
purged after it; RELIABILITY D2) has that object's ids listed at once and the
mirror rows that are gone retired (sync/reconcile.py `reconcile_object`).

A page and the cursor that follows it land together (a savepoint each), and
every PAGES_PER_COMMIT pages commit at once (`_Group`): a run killed at any
instant resumes from the last committed page, losing at most the uncommitted
pages of its group (fetched again) and counting nothing twice. `should_stop`
is checked between pages, so SIGTERM finishes the current page, commits, and
returns.

After the records, what the CRM says about itself that reports need offline
(the Salesforce instance URL, the HubSpot portal id: `connector.crm_info`) is
stored in the mirror (state/crm_info.py); a connector asks the CRM for it only
while the mirror does not know it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlite_utils

from crmsync.connectors.base import Connector
from crmsync.state import crm_info, cursors, mirror
from crmsync.state.batch import batched
from crmsync.state.db import join_transaction, transaction
from crmsync.state.model import PULL_ORDER, ObjectType, Page

from .reconcile import reconcile_object

log = logging.getLogger(__name__)

# Operations that read schema or limits, not records; the page-size floor excludes them.
METADATA_OPERATIONS = frozenset({"describe", "properties", "limits", "quota", "auth"})


def _data_calls(connector: Connector) -> int:
    return sum(n for op, n in connector.calls.by_operation.items() if op not in METADATA_OPERATIONS)


@dataclass
class ObjectReport:
    object: str
    mode: str
    pages: int = 0
    records: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped: int = 0
    api_calls: int = 0
    data_calls: int = (
        0  # api_calls less schema look-ups (describe, properties): what page sizes bound
    )
    done: bool = False


@dataclass
class PullReport:
    crm: str
    objects: list[ObjectReport] = field(default_factory=list)
    interrupted: bool = False

    @property
    def records(self) -> int:
        return sum(o.records for o in self.objects)

    def counts(self) -> dict[str, Any]:
        return {
            o.object: {
                "mode": o.mode,
                "records": o.records,
                "inserted": o.inserted,
                "updated": o.updated,
                "unchanged": o.unchanged,
                "deleted": o.deleted,
                "skipped": o.skipped,
                "api_calls": o.api_calls,
                "data_calls": o.data_calls,
            }
            for o in self.objects
        }


class Progress:
    """What pull() tells a progress display; the CLI implements it with rich."""

    def start(self, crm: str, obj: str, mode: str) -> None: ...
    def advance(self, crm: str, obj: str, records: int, api_calls: int) -> None: ...
    def finish(self, crm: str, obj: str) -> None: ...


def _and_again(objects: Iterable[ObjectType], connector: Connector) -> Iterator[ObjectType]:
    """`objects`, then what the connector asks to pull again once they are done (HubSpot:
    owners, when a record named one its kept owners lack)."""
    wanted = list(objects)
    yield from wanted
    yield from (obj for obj in connector.pull_again() if obj in wanted)


def pull(
    db: sqlite_utils.Database,
    connector: Connector,
    *,
    full: bool,
    started_at: datetime,
    objects: Iterable[ObjectType] = PULL_ORDER,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Progress | None = None,
    allow_empty: bool = False,
    report: PullReport | None = None,
) -> PullReport:
    """Pull `objects` into the mirror. Pass `report` to keep the counts of the pages
    committed before an error (the run history then says what the run did)."""
    crm = connector.crm
    report = report if report is not None else PullReport(crm)
    progress = progress or Progress()
    for obj in _and_again(objects, connector):
        if should_stop():
            report.interrupted = True
            break
        state = cursors.get(db, crm, obj)
        full_mode = full or state.full_in_progress or state.mode is None
        generation = state.generation
        cursor = state.cursor
        if full_mode:
            resuming = state.full_in_progress
            with transaction(db):
                generation = cursors.begin_full(db, crm, obj)
                if not resuming:
                    mirror.defer_indexes(db, obj)  # an empty table: built once at the end
            cursor = state.cursor if resuming else None
            if resuming:
                log.info("resuming full pull", extra={"crm": crm, "object": str(obj)})
        mode = "full" if full_mode else "incremental"
        rep = ObjectReport(str(obj), mode)
        report.objects.append(rep)
        progress.start(crm, str(obj), mode)
        calls_before = connector.calls.total
        data_before = _data_calls(connector)
        group = _Group(db, rep, crm, str(obj), mode, progress)
        try:
            for page in connector.pull(obj, cursor, full=full_mode, started_at=started_at):
                group.open()
                with transaction(db):  # a savepoint: a page that fails leaves no trace
                    res = mirror.apply_page(
                        db, crm, page, generation=generation, seen_at=started_at
                    )
                    cursors.save(
                        db,
                        crm,
                        obj,
                        page.cursor,
                        mode="full" if full_mode and not page.done else "incremental",
                    )
                    vanished = 0
                    if full_mode and page.done:
                        vanished = mirror.finish_full(
                            db, crm, obj, generation, seen_at=started_at, allow_empty=allow_empty
                        )
                group.add(page, res, vanished)
                rep.api_calls = connector.calls.total - calls_before
                rep.data_calls = _data_calls(connector) - data_before
                stop = should_stop() and not page.done
                if page.done or stop or group.full:
                    group.commit()
                if stop:
                    report.interrupted = True
                    break
        finally:
            group.commit()  # the pages applied before an error or the end are kept
        sweep = {ObjectType.CONTACT: company_moves, ObjectType.CONTACT_ROLE: label_changes}.get(obj)
        if sweep is not None and not full_mode and rep.done and not should_stop():
            sweep(db, connector, rep, generation=generation, started_at=started_at)
            rep.api_calls = connector.calls.total - calls_before
            rep.data_calls = _data_calls(connector) - data_before
        if not full_mode and rep.done and not should_stop() and connector.missed_deletes(obj):
            log.warning(
                "deletions may have been purged before this pull saw them; listing ids",
                extra={"crm": crm, "object": str(obj)},
            )
            counts = reconcile_object(db, connector, obj, seen_at=started_at)
            rep.deleted += (counts or {}).get("deleted", 0)
            rep.api_calls = connector.calls.total - calls_before
            rep.data_calls = _data_calls(connector) - data_before
        progress.finish(crm, str(obj))
        if report.interrupted:
            break
    if not report.interrupted:
        crm_info.remember(db, crm, connector.crm_info(crm_info.known(db, crm)), at=started_at)
    return report


PAGES_PER_COMMIT = 4


@dataclass
class _Group:
    """Pages applied in one transaction, committed every PAGES_PER_COMMIT pages.

    Each page and its cursor land together (a savepoint each); the group commits at
    once, which spares the per-page commit's rewrite of the same index pages. A run
    killed mid-group loses the group's uncommitted pages and redoes them from the last
    committed cursor: nothing is applied twice. The report counts a page once committed.
    The write transaction stays open while the group's next pages are fetched: readers
    (WAL) are not held up, and no other writer runs meanwhile (every writing command
    holds the mirror's writer lock first, state/lock.py).
    """

    db: sqlite_utils.Database
    rep: ObjectReport
    crm: str
    object: str
    mode: str
    progress: Progress
    pending: list[tuple[int, mirror.ApplyResult, int, bool]] = field(default_factory=list)
    ours: bool = False  # the open transaction is the group's own, to commit

    @property
    def full(self) -> bool:
        return len(self.pending) >= PAGES_PER_COMMIT

    def open(self) -> None:
        if not self.db.conn.in_transaction:
            join_transaction(self.db)
            self.ours = True  # else the caller's (a dry run's rolled-back one): never committed


    def add(self, page: Page, res: mirror.ApplyResult, vanished: int) -> None:
        self.pending.append((len(page.records), res, vanished, page.done))

    def commit(self) -> None:
        if not self.db.conn.in_transaction:
            # Nothing open, or SQLite itself rolled the transaction back (a full disk):
            # the pending pages are not in the mirror, so they are not counted.
            self.pending.clear()
            return
        if self.ours:
            try:
                self.db.conn.execute("COMMIT")
            except BaseException:
                self.pending.clear()
                self.db.rollback()
                raise
            self.ours = False
        rep = self.rep
        for records, res, vanished, done in self.pending:
            rep.pages += 1
            rep.records += records
            rep.inserted += res.inserted
            rep.updated += res.updated
            rep.unchanged += res.unchanged
            rep.deleted += res.deleted + vanished
            rep.skipped += res.skipped
            rep.done = rep.done or done
            self.progress.advance(self.crm, self.object, records, rep.api_calls)
            log.info(
                "page committed",
                extra={
                    "crm": self.crm,
                    "object": self.object,
                    "records": records,
                    "mode": self.mode,
                },
            )
        self.pending.clear()


def company_moves(
    db: sqlite_utils.Database,
    connector: Connector,
    rep: ObjectReport,
    *,
    generation: int,
    started_at: datetime,
) -> int:
    """Contacts moved to another account without a date an incremental pull could see.

    HubSpot defines a contact's `lastmodifieddate` as the date any of its properties
    changed, and the primary company is a property (`associatedcompanyid`), so a move
    should reach the incremental search; whether it does on a real portal is unconfirmed
    (api-facts §3). So the connector lists every live account's contact links (v4,
    1,000 accounts per call: 2 calls for 2,000 accounts) and the mirror names the contacts
    they contradict; those alone are read again (100 per call). Where the dates do move,
    the search already applied the move and nothing is read again. Returns how many.
    """
    crm = connector.crm
    links = connector.company_contacts(_live_ids(db, crm, ObjectType.ACCOUNT))
    if links is None:
        return 0
    moved = mirror.account_moves(db, crm, links)
    if not moved:
        return 0
    log.info("contacts moved to another account found", extra={"crm": crm, "records": len(moved)})
    for page in connector.reread(ObjectType.CONTACT, moved, started_at=started_at):
        _apply(db, crm, page, rep, generation=generation, started_at=started_at)
    return len(moved)


def label_changes(
    db: sqlite_utils.Database,
    connector: Connector,
    rep: ObjectReport,
    *,
    generation: int,
    started_at: datetime,
) -> int:
    """Opportunities whose contact roles changed without a date an incremental pull could see.

    A HubSpot deal-contact label added or removed changes no property of the deal or the
    contact (airbytehq/airbyte#27199; docs/reliability.md D7). The connector lists every
    live deal's labels (v4, 1,000 deals per call: 4 calls for 3,600 deals), the mirror
    names the deals whose roles differ, and only those are read again (their modified
    dates, 100 per call, and labels); their roles the CRM no longer holds are retired.
    Returns how many deals.
    """
    crm = connector.crm
    roles = connector.deal_labels(_live_ids(db, crm, ObjectType.OPPORTUNITY))
    if roles is None:
        return 0
    changed = mirror.role_changes(db, crm, roles)
    if not changed:
        return 0
    log.info("contact roles changed on opportunities", extra={"crm": crm, "records": len(changed)})
    for part in batched(changed, 1000):
        keep: list[str] = []
        for page in connector.reread_labels(part, started_at=started_at):
            keep.extend(r.id for r in page.records if not r.deleted)
            _apply(db, crm, page, rep, generation=generation, started_at=started_at)
        with transaction(db):
            rep.deleted += mirror.retire_roles(db, crm, part, keep, started_at)
    return len(changed)


def _live_ids(db: sqlite_utils.Database, crm: str, obj: ObjectType) -> Iterator[str]:
    """The live ids of `obj`, read when first asked for: a connector without the sweep
    (Salesforce) answers None without reading them."""
    yield from mirror.live_ids(db, crm, obj)


def _apply(
    db: sqlite_utils.Database,
    crm: str,
    page: Page,
    rep: ObjectReport,
    *,
    generation: int,
    started_at: datetime,
) -> None:
    """Apply a page that carries no cursor (a re-read by id), counting it in `rep`."""
    with transaction(db):
        res = mirror.apply_page(db, crm, page, generation=generation, seen_at=started_at)
    rep.records += len(page.records)
    rep.inserted += res.inserted
    rep.updated += res.updated
    rep.unchanged += res.unchanged
    rep.deleted += res.deleted
    rep.skipped += res.skipped
