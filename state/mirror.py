"""Apply a Page to the mirror: batched upsert, soft delete, merges, contact history.

`apply_page` reads the stored rows of the page's ids in one query, decides per
record whether it is new, changed, unchanged, deleted or stale, and writes the
changed rows with one executemany upsert. Nothing is deleted for real: a
deleted record keeps its row with `deleted_at` set, so flags and tasks that
point at it can be resolved. Per record:

- new id: inserted.
- same values, modified_at, raw and owned as stored: unchanged, nothing written
  (only `synced_at` is stamped with the full pull's generation when it differs).
- `modified_at` older than the stored one: skipped (never regress a row to an
  older version; a late tombstone for a restored record is such a case).
- `deleted` or `merged_into`: tombstoned (`deleted_at` = seen_at; the stored
  values are kept). A merge loser's dependants (history, roles, tasks; for an
  account its contacts and opportunities; for an opportunity its roles) are
  re-pointed to the survivor, so a merge never looks like a contact moving.
- otherwise updated; for contacts, a change of account_id, email (ignoring
  case) or title adds a contact_history row (old, new, seen_at).

Transactions: apply_page never commits. It joins the caller's transaction or
opens one (`BEGIN IMMEDIATE`) for the caller to commit, so
`with db.conn: apply_page(...); cursors.save(...)` lands the page and its
cursor together or neither.

Logs carry CRM ids and counts only, never values (personal data).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from crmsync.state import cursors, identity
from crmsync.state.batch import batched
from crmsync.state.db import (
    ENCODERS,
    StoredValues,
    column_kind,
    dumps,
    encode_datetime,
    encode_text,
    join_transaction,
    restore_indexes,
    transaction,
)
from crmsync.state.errors import EmptyFullPull
from crmsync.state.model import COLUMNS, CrmRecord, ObjectType, Page

log = logging.getLogger(__name__)

HISTORY_FIELDS: tuple[str, ...] = ("account_id", "email", "title")
# A full pull that sees nothing may not wipe this many live rows (see finish_full).
EMPTY_GUARD_ROWS = 20
_TAIL = ("raw", "owned", "modified_at", "deleted_at", "merged_into", "synced_at")


@dataclass
class ApplyResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    history_rows: int = 0
    skipped: int = 0

    def __add__(self, other: ApplyResult) -> ApplyResult:
        return ApplyResult(**{k: v + getattr(other, k) for k, v in asdict(self).items()})

    @property
    def counts(self) -> dict[str, int]:
        return asdict(self)

    @property
    def written(self) -> int:
        return self.inserted + self.updated + self.deleted


STAGE_ROWS = 5000  # rows per executemany when ids are staged in a temp table


def _stage(db: sqlite_utils.Database, insert: str, rows: Iterable[tuple[Any, ...]]) -> int:
    """Run `insert` for every row, STAGE_ROWS at a time (no list of a million ids in
    memory); return how many rows there were."""
    n = 0
    for chunk in batched(rows, STAGE_ROWS):
        db.conn.executemany(insert, chunk)
        n += len(chunk)
    return n


def table_columns(obj: ObjectType) -> tuple[str, ...]:
    """Stored columns of `obj`'s table, in the order apply_page writes them."""
    return ("crm", "id", *COLUMNS[obj], *_TAIL)


def apply_page(
    db: sqlite_utils.Database,
    crm: str,
    page: Page,
    *,
    generation: int,
    seen_at: datetime,
) -> ApplyResult:
    """Upsert `page` into the mirror inside the caller's transaction (never commits)."""
    obj = ObjectType(page.object)
    result = ApplyResult()
    records = _dedupe(page.records, obj, result, crm)
    if not records:
        return result
    join_transaction(db)
    columns = table_columns(obj)
    existing = _load_existing(db, obj, crm, [r.id for r in records], columns)
    seen = encode_datetime(seen_at)
    upserts: list[tuple[Any, ...]] = []
    touch: list[str] = []
    history: list[tuple[Any, ...]] = []
    merges: list[tuple[str, str]] = []
    deletions: list[str] = []
    for record in records:
        row = encode_row(obj, crm, record, generation)
        old = existing.get(record.id)
        outcome = _decide(row, old, record, columns)
        if outcome == "skipped":
            result.skipped += 1
            continue
        if outcome == "absent":
            deletions.append(record.id)  # its dependants (if any) still go
            continue
        if outcome == "unchanged":
            result.unchanged += 1
            if old is not None and old[-1] != generation:
                touch.append(record.id)
            continue
        if outcome == "deleted":
            result.deleted += 1
            row = _tombstone(row, old, seen, columns)
            if record.merged_into:
                merges.append((record.id, record.merged_into))
            else:
                deletions.append(record.id)
        elif outcome == "inserted":
            result.inserted += 1
        else:
            result.updated += 1
            if obj is ObjectType.CONTACT and old is not None:
                history.extend(_history(crm, record.id, old, row, columns, seen))
        upserts.append(row)
    _write(db, obj, columns, upserts, crm)
    _touch(db, obj, crm, touch, generation)
    if history:
        db.conn.executemany(
            "INSERT INTO contact_history (crm, contact_id, field, old, new, seen_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            history,
        )
        result.history_rows = len(history)
    for loser, survivor in merges:
        repoint(db, crm, obj, loser, survivor)
    if deletions:
        cascade_delete(db, crm, obj, deletions, seen)
    log.debug("applied page", extra={"crm": crm, "object": obj.value, **result.counts})
    return result


def _dedupe(
    records: Sequence[CrmRecord], obj: ObjectType, result: ApplyResult, crm: str
) -> list[CrmRecord]:
    """One record per id: the newest (the later one on a tie); others count as skipped."""
    by_id: dict[str, CrmRecord] = {}
    for record in records:
        if not record.id or (record.object is not obj and ObjectType(record.object) is not obj):
            result.skipped += 1
            log.warning(
                "record skipped: no id or wrong object",
                extra={"crm": crm, "object": obj.value, "record_id": record.id},
            )
            continue
        prior = by_id.get(record.id)
        if prior is not None:
            result.skipped += 1
            if _older(record.modified_at, prior.modified_at):
                continue
        by_id[record.id] = record
    return list(by_id.values())


def _older(a: datetime | None, b: datetime | None) -> bool:
    return a is not None and b is not None and a < b


def _load_existing(
    db: sqlite_utils.Database,
    obj: ObjectType,
    crm: str,
    ids: list[str],
    columns: tuple[str, ...],
) -> dict[str, tuple[Any, ...]]:
    """The stored rows of `ids`, in one query (json_each keeps it one parameter)."""
    sql = (
        f"SELECT {', '.join(columns)} FROM {obj.value} "
        "WHERE crm = ? AND id IN (SELECT value FROM json_each(?))"
    )
    return {row[1]: tuple(row) for row in db.conn.execute(sql, [crm, dumps(ids)])}


_ENCODERS: dict[ObjectType, tuple[tuple[str, Callable[[Any], Any]], ...]] = {
    obj: tuple((column, ENCODERS[column_kind(column)]) for column in columns)
    for obj, columns in COLUMNS.items()
}
_KEYS = {obj: frozenset(columns) for obj, columns in COLUMNS.items()}


def encode_row(obj: ObjectType, crm: str, record: CrmRecord, generation: int) -> tuple[Any, ...]:
    values = record.values
    if type(values) is StoredValues and values.columns == COLUMNS[obj]:
        # The connector handed the stored form (state/db.py StoredValues): nothing to convert.
        return (
            crm,
            record.id,
            *values.row,
            values.raw_json,
            values.owned_json,
            values.modified_at or encode_datetime(record.modified_at),
            None,  # deleted_at
            record.merged_into or None,
            generation,
        )
    out: list[Any] = [crm, record.id]
    for column, encode in _ENCODERS[obj]:
        value = values.get(column)
        if value is None:
            out.append(None)
            continue
        if type(value) is str and encode is encode_text:  # most values: stored as they are
            out.append(value)
            continue
        try:
            out.append(encode(value))
        except (TypeError, ValueError):
            # The connector should have mapped it; keep the row, lose only this
            # value (the CRM's own value is still in `raw`).
            out.append(None)
            log.warning(
                "value not storable; stored as null",
                extra={"crm": crm, "object": obj.value, "record_id": record.id, "column": column},
            )
    if not _KEYS[obj].issuperset(values):
        log.warning(
            "record has non-canonical keys; ignored",
            extra={
                "crm": crm,
                "object": obj.value,
                "record_id": record.id,
                "keys": sorted(set(values) - set(COLUMNS[obj])),
            },
        )
    out.append(_json(record.raw))
    out.append(_json(record.owned))
    out.append(encode_datetime(record.modified_at))
    out.append(None)  # deleted_at
    out.append(record.merged_into or None)
    out.append(generation)
    return tuple(out)


def _json(value: Mapping[str, Any]) -> str | None:
    if not value:
        return None
    return dumps(value if type(value) is dict else dict(value))


def _decide(
    row: tuple[Any, ...],
    old: tuple[Any, ...] | None,
    record: CrmRecord,
    columns: tuple[str, ...],
) -> str:
    modified = len(columns) - 4  # index of modified_at
    if old is not None and old[modified] is not None and row[modified] is not None:
        if row[modified] < old[modified]:
            return "skipped"
    if record.deleted or record.merged_into:
        if old is None and not record.merged_into:
            # Nothing to delete: a record created and deleted between runs, or (HubSpot
            # contact roles) a role the connector retires without knowing it was ever held.
            # No tombstone row is written and nothing is counted as deleted.
            return "absent"
        if old is not None and old[-3] is not None and (old[-2] == (record.merged_into or old[-2])):
            return "unchanged"
        return "deleted"
    if old is None:
        return "inserted"
    # compare everything but synced_at
    if row[:-1] == old[:-1]:
        return "unchanged"
    return "updated"


def _tombstone(
    row: tuple[Any, ...], old: tuple[Any, ...] | None, seen: str | None, columns: tuple[str, ...]
) -> tuple[Any, ...]:
    """Deleted row: keep the stored values (a deletion often carries none)."""
    base = list(old) if old is not None else list(row)
    modified = len(columns) - 4
    if row[modified] is not None:
        base[modified] = row[modified]
    base[-3] = (old[-3] if old is not None and old[-3] is not None else None) or seen
    base[-2] = row[-2] or base[-2]
    base[-1] = row[-1]
    return tuple(base)


def _history(
    crm: str,
    contact_id: str,
    old: tuple[Any, ...],
    new: tuple[Any, ...],
    columns: tuple[str, ...],
    seen: str | None,
) -> Iterable[tuple[Any, ...]]:
    for field in HISTORY_FIELDS:
        i = columns.index(field)
        before, after = old[i], new[i]
        if _norm(field, before) != _norm(field, after):
            yield (crm, contact_id, field, before, after, seen)


def _norm(field: str, value: Any) -> Any:
    if value is None:
        return None
    text = str(value).strip()
    if field == "email":
        text = text.casefold()
    return text or None


def _write(
    db: sqlite_utils.Database,
    obj: ObjectType,
    columns: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    crm: str,
) -> None:
    if not rows:
        return
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns[2:])
    sql = (
        f"INSERT INTO {obj.value} ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' * len(columns))}) "
        f"ON CONFLICT (crm, id) DO UPDATE SET {updates}"
    )
    try:
        db.conn.executemany(sql, rows)
    except UnicodeEncodeError:
        # A lone surrogate (e.g. "\ud800" from a CRM's JSON) cannot be stored as
        # UTF-8: replace it and write again (the upsert is idempotent).
        log.warning(
            "invalid unicode replaced in page",
            extra={"crm": crm, "object": obj.value, "records": len(rows)},
        )
        db.conn.executemany(sql, [tuple(_scrub(v) for v in row) for row in rows])


_SURROGATE = re.compile("[\ud800-\udfff]")


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    return value


def _touch(
    db: sqlite_utils.Database, obj: ObjectType, crm: str, ids: list[str], generation: int
) -> None:
    """Stamp unchanged rows as seen by this generation, in one statement."""
    if ids:
        db.conn.execute(
            f"UPDATE {obj.value} SET synced_at = ? "
            "WHERE crm = ? AND id IN (SELECT value FROM json_each(?))",
            [generation, crm, dumps(ids)],
        )


# Where a merge loser's id can appear, per object: (table, column).
_REFERENCES: dict[ObjectType, tuple[tuple[str, str], ...]] = {
    ObjectType.CONTACT: (
        ("contact_history", "contact_id"),
        ("contact_roles", "contact_id"),
        ("tasks", "contact_id"),
    ),
    ObjectType.ACCOUNT: (
        ("contacts", "account_id"),
        ("opportunities", "account_id"),
        ("tasks", "account_id"),
    ),
    ObjectType.OPPORTUNITY: (("contact_roles", "opportunity_id"),),
}


# What a deletion (not a merge) takes with it. A contact's or an opportunity's buying
# roles go with it (HubSpot drops the associations without touching the surviving
# side's modified date, so no later pull would remove them); an account's
# opportunities lose the link (HubSpot keeps deals, unassociated; Salesforce deletes
# them too and they arrive as deletions of their own). Contacts keep theirs: HubSpot
# keeps a contact's associatedcompanyid after the company is archived.
_CASCADE: dict[ObjectType, tuple[tuple[str, str, str], ...]] = {
    ObjectType.CONTACT: (("contact_roles", "contact_id", "tombstone"),),
    ObjectType.OPPORTUNITY: (("contact_roles", "opportunity_id", "tombstone"),),
    ObjectType.ACCOUNT: (("opportunities", "account_id", "detach"),),
}


def cascade_delete(
    db: sqlite_utils.Database, crm: str, obj: ObjectType, ids: Sequence[str], seen: str | None
) -> None:
    """Apply what deleting `ids` of `obj` implies for rows that point at them."""
    for table, column, how in _CASCADE.get(obj, ()):
        if how == "tombstone":
            db.conn.execute(
                f"UPDATE {table} SET deleted_at = ? WHERE crm = ? AND deleted_at IS NULL"
                f" AND {column} IN (SELECT value FROM json_each(?))",
                [seen, crm, dumps(list(ids))],
            )
        else:
            db.conn.execute(
                f"UPDATE {table} SET {column} = NULL WHERE crm = ? AND deleted_at IS NULL"
                f" AND {column} IN (SELECT value FROM json_each(?))",
                [crm, dumps(list(ids))],
            )


def live_ids(db: sqlite_utils.Database, crm: str, obj: ObjectType) -> list[str]:
    """Ids of `crm`'s live (not deleted) rows of `obj`, in id order."""
    sql = f"SELECT id FROM {obj.value} WHERE crm = ? AND deleted_at IS NULL ORDER BY id"
    return [row[0] for row in db.conn.execute(sql, [crm])]


def account_moves(
    db: sqlite_utils.Database, crm: str, edges: Iterable[tuple[str, str, bool]]
) -> list[str]:
    """Live contacts whose account the CRM's contact-account links contradict.

    `edges` are (contact id, account id, primary) for every contact of every live account
    (HubSpot: sync/pull.py `company_moves`). A contact moved when its primary account is
    not the one the mirror holds, or when the mirror's account, a live one, no longer
    lists it at all. Contacts the mirror does not hold yet, or holds against a deleted
    account, are left to the pulls. The links are staged in a temp table (no Python
    memory per link).
    """
    with transaction(db):
        return _account_moves(db, crm, edges)


def _account_moves(
    db: sqlite_utils.Database, crm: str, edges: Iterable[tuple[str, str, bool]]
) -> list[str]:
    db.conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS _links "
        "(contact_id TEXT, account_id TEXT, is_primary INTEGER, PRIMARY KEY (contact_id, account_id))"
    )
    db.conn.execute("DELETE FROM _links")
    _stage(
        db,
        "INSERT OR REPLACE INTO _links (contact_id, account_id, is_primary) VALUES (?, ?, ?)",
        (
            (contact_id, account_id, 1 if primary else 0)
            for contact_id, account_id, primary in edges
        ),
    )
    rows = db.conn.execute(
        "SELECT c.id FROM contacts c JOIN _links l ON l.contact_id = c.id AND l.is_primary = 1"
        " WHERE c.crm = ? AND c.deleted_at IS NULL AND c.account_id IS NOT l.account_id"
        " UNION"
        " SELECT c.id FROM contacts c JOIN accounts a"
        "  ON a.crm = c.crm AND a.id = c.account_id AND a.deleted_at IS NULL"
        " WHERE c.crm = ? AND c.deleted_at IS NULL AND NOT EXISTS"
        "  (SELECT 1 FROM _links l WHERE l.contact_id = c.id AND l.account_id = c.account_id)"
        " ORDER BY 1",
        [crm, crm],
    ).fetchall()
    db.conn.execute("DELETE FROM _links")
    return [r[0] for r in rows]


def role_changes(
    db: sqlite_utils.Database, crm: str, roles: Iterable[tuple[str, str]]
) -> list[str]:
    """Live opportunities whose contact roles the CRM's current roles contradict.

    `roles` are (opportunity id, role id) for every role the CRM holds on every live
    opportunity (HubSpot's deal-contact labels: sync/pull.py `label_changes`). An
    opportunity differs when the CRM holds a role the mirror does not have live, or the
    mirror a live role the CRM no longer holds. Staged in a temp table.
    """
    with transaction(db):
        db.conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS _roles (id TEXT PRIMARY KEY, opportunity_id TEXT)"
        )
        db.conn.execute("DELETE FROM _roles")
        _stage(db, "INSERT OR IGNORE INTO _roles (opportunity_id, id) VALUES (?, ?)", roles)
        rows = db.conn.execute(
            "SELECT s.opportunity_id FROM _roles s JOIN opportunities o"
            "  ON o.crm = ? AND o.id = s.opportunity_id AND o.deleted_at IS NULL"
            " WHERE NOT EXISTS (SELECT 1 FROM contact_roles r"
            "  WHERE r.crm = ? AND r.id = s.id AND r.deleted_at IS NULL)"
            " UNION"
            " SELECT r.opportunity_id FROM contact_roles r JOIN opportunities o"
            "  ON o.crm = r.crm AND o.id = r.opportunity_id AND o.deleted_at IS NULL"
            " WHERE r.crm = ? AND r.deleted_at IS NULL"
            "  AND NOT EXISTS (SELECT 1 FROM _roles s WHERE s.id = r.id)"
            " ORDER BY 1",
            [crm, crm, crm],
        ).fetchall()
        db.conn.execute("DELETE FROM _roles")
    return [r[0] for r in rows]


def retire_roles(
    db: sqlite_utils.Database,
    crm: str,
    opportunity_ids: Sequence[str],
    keep: Iterable[str],
    seen_at: datetime,
) -> int:
    """Soft-delete the live roles of `opportunity_ids` whose id is not in `keep` (the roles
    the CRM holds on them now); joins the caller's transaction. Returns how many."""
    join_transaction(db)
    cur = db.conn.execute(
        "UPDATE contact_roles SET deleted_at = ? WHERE crm = ? AND deleted_at IS NULL"
        " AND opportunity_id IN (SELECT value FROM json_each(?))"
        " AND id NOT IN (SELECT value FROM json_each(?))",
        [encode_datetime(seen_at), crm, dumps(list(opportunity_ids)), dumps(list(keep))],
    )
    return int(cur.rowcount)


def delete_missing(
    db: sqlite_utils.Database,
    crm: str,
    obj: ObjectType,
    live_ids: Iterable[str],
    seen_at: datetime,
    *,
    guard: int | None = None,
    changed_after: datetime | None = None,
) -> int:
    """Soft-delete `crm`'s live rows of `obj` whose id is not in `live_ids`; return how many.

    For reconciliation against the CRM's full id list. Ids are staged in a temp
    table, so a million of them cost no Python memory. Joins the caller's
    transaction (the ids and the deletes they imply land together). With `guard`,
    an empty `live_ids` deletes nothing when the mirror holds at least `guard`
    live rows (logged): the same reasoning as `finish_full`'s.

    With `changed_after` (a listing read through an index that lags writes, such as
    HubSpot's search), a row the CRM changed at or after it (`modified_at`), or crmsync
    wrote then (`written`: a task it created that no pull has seen yet), is kept: its
    absence may be the index's, not the CRM's.
    """
    join_transaction(db)
    db.conn.execute("CREATE TEMP TABLE IF NOT EXISTS _live (id TEXT PRIMARY KEY)")
    db.conn.execute("DELETE FROM _live")
    listed = _stage(db, "INSERT OR IGNORE INTO _live (id) VALUES (?)", ((rid,) for rid in live_ids))
    if guard is not None and listed == 0:
        (held,) = db.conn.execute(
            f"SELECT count(*) FROM {obj.value} WHERE crm = ? AND deleted_at IS NULL", [crm]
        ).fetchone()
        if held >= guard:
            log.warning(
                "the CRM listed no ids; reconcile deleted nothing",
                extra={"crm": crm, "object": obj.value, "live_rows": held},
            )
            return 0
    recent, params = "", [encode_datetime(seen_at), crm]
    if changed_after is not None:
        cutoff = encode_datetime(changed_after)
        recent = (
            " AND coalesce(modified_at, '') < ? AND NOT EXISTS (SELECT 1 FROM written w"
            f" WHERE w.crm = {obj.value}.crm AND w.object = ? AND w.id = {obj.value}.id"
            " AND w.written_at >= ?)"
        )
        params += [cutoff, obj.value, cutoff]
    cur = db.conn.execute(
        f"UPDATE {obj.value} SET deleted_at = ? WHERE crm = ? AND deleted_at IS NULL"
        f" AND id NOT IN (SELECT id FROM _live){recent}",
        params,
    )
    db.conn.execute("DELETE FROM _live")
    return int(cur.rowcount)


def repoint(
    db: sqlite_utils.Database, crm: str, obj: ObjectType, loser: str, survivor: str
) -> None:
    """Move what pointed at a merge loser to its survivor (joins the caller's transaction)."""
    if loser == survivor:
        return
    join_transaction(db)
    for table, column in _REFERENCES.get(obj, ()):
        db.conn.execute(
            f"UPDATE {table} SET {column} = ? WHERE crm = ? AND {column} = ?",
            [survivor, crm, loser],
        )
    if obj is ObjectType.ACCOUNT:
        # An account-change row naming the loser would read as a contact moving.
        for column in ("old", "new"):
            db.conn.execute(
                f"UPDATE contact_history SET {column} = ? "
                f"WHERE crm = ? AND field = 'account_id' AND {column} = ?",
                [survivor, crm, loser],
            )
        db.conn.execute(
            "DELETE FROM contact_history WHERE crm = ? AND field = 'account_id' AND old IS new",
            [crm],
        )
    # A link to the other CRM's record of the same person moves with the merge.
    identity.repoint_links(db, crm, obj, loser, survivor)
    log.info(
        "merge applied",
        extra={"crm": crm, "object": obj.value, "loser_id": loser, "survivor_id": survivor},
    )


def defer_indexes(db: sqlite_utils.Database, object: ObjectType | str) -> list[str]:
    """Drop `object`'s secondary indexes when its table holds no row at all; return
    their names.

    For a first full pull: SQLite builds an index from the finished table faster
    than it keeps it up to date row by row (bench/ingest_speed.py). `finish_full`
    builds them again in the transaction of the last page, and `open_db` after a run
    killed before that (state/db.py `restore_indexes`). Joins the caller's transaction.
    """
    table = ObjectType(object).value
    join_transaction(db)
    if db.conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None:
        return []
    names = [
        r[0]
        for r in db.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?"
            " AND sql IS NOT NULL",
            [table],
        )
    ]
    for name in names:
        db.conn.execute(f'DROP INDEX "{name}"')
    if names:
        log.info("indexes deferred to the end of the full pull", extra={"object": table})
    return names


def finish_full(
    db: sqlite_utils.Database,
    crm: str,
    object: ObjectType | str,
    generation: int,
    seen_at: datetime,
    *,
    allow_empty: bool = False,
) -> int:
    """End a full pull: soft-delete live rows its generation never saw; return how many.

    Also sets the cursor's mode back to incremental. Joins the caller's
    transaction; commit it together with the final cursor. Refuses (EmptyFullPull)
    when the pull saw nothing at all but the mirror holds live rows, which is
    almost always lost permissions or a wrong filter, not an empty CRM; pass
    `allow_empty=True` to accept it.
    """
    obj = ObjectType(object)
    state = cursors.get(db, crm, obj)
    if state.generation != generation:
        raise ValueError(
            f"full pull generation {generation} of {crm} {obj.value} is not the current "
            f"one ({state.generation}); was another full pull started?"
        )
    join_transaction(db)
    table = obj.value
    if not allow_empty:
        seen_any = db.conn.execute(
            f"SELECT 1 FROM {table} WHERE crm = ? AND synced_at = ? LIMIT 1", [crm, generation]
        ).fetchone()
        live = db.conn.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE crm = ? AND deleted_at IS NULL"
            f" LIMIT {EMPTY_GUARD_ROWS})",
            [crm],
        ).fetchone()[0]
        if seen_any is None and live >= EMPTY_GUARD_ROWS:
            raise EmptyFullPull(
                f"The full pull of {crm} {table} returned no records but the mirror holds "
                "live ones; check the integration user's permissions. Nothing was deleted",
                crm=crm,
                operation=f"full pull of {table}",
                fix="If the CRM really is empty, run again with `--full --allow-empty`.",
            )
    cursor = db.conn.execute(
        f"UPDATE {table} SET deleted_at = ? "
        "WHERE crm = ? AND deleted_at IS NULL AND synced_at IS NOT ?",
        [encode_datetime(seen_at), crm, generation],
    )
    vanished = cursor.rowcount
    cursors.end_full(db, crm, obj, generation)
    restore_indexes(db, [table])  # after a first full pull (defer_indexes)
    log.info(
        "full pull finished",
        extra={"crm": crm, "object": table, "generation": generation, "vanished": vanished},
    )
    return vanished
