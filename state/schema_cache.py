"""Schema look-ups kept between runs (issue 14: no request that is not needed).

A connector asks the CRM what an object looks like (Salesforce describe, HubSpot
property lists) and who the owners are; an incremental over an unchanged org
needs none of it again. The connector keeps those answers in a `SchemaStore`:
`MirrorSchemaStore` keeps them in the mirror's `schema_cache` table (migration
m005) across runs; `MemorySchemaStore` for the length of one connector (what a
connector uses until sync/run.py hands it the mirror's).

    store = MirrorSchemaStore(db, "salesforce", now=started)
    entry = store.get("describe:Contact")        # Cached(body, fetched_at, validator) | None
    store.put("describe:Contact", body, validator="Mon, 07 Dec 2026 12:00:00 GMT")
    store.confirm("describe:Contact")            # the CRM said "unchanged": fetched_at = now
    store.drop("describe:Contact")               # a query named a field the org lacks

`now` is the run's start (the run's injected clock), so how old an entry is
never depends on the wall clock. What "too old" is, is the connector's
setting (`schema_max_age_hours`, `owners_max_age_minutes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import sqlite_utils

from crmsync.state.db import decode_datetime, dumps, encode_datetime, loads
from crmsync.state.sql import transaction


@dataclass(frozen=True)
class Cached:
    """One kept answer: the CRM's body, when it was last confirmed, and its validator."""

    body: Any
    fetched_at: datetime
    validator: str | None = None

    def fresh(self, now: datetime, max_age: timedelta) -> bool:
        """Younger than `max_age` at `now` (a max age of 0 is never fresh)."""
        return max_age > timedelta(0) and now - self.fetched_at < max_age


class SchemaStore(Protocol):
    """Where a connector keeps its schema look-ups; `now` is the time entries are aged by."""

    now: datetime

    def get(self, key: str) -> Cached | None: ...

    def put(self, key: str, body: Any, *, validator: str | None = None) -> None: ...

    def confirm(self, key: str) -> None: ...

    def drop(self, key: str) -> None: ...


class MemorySchemaStore:
    """Kept for the life of this object only (one connector, one run)."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC)
        self._entries: dict[str, Cached] = {}

    def get(self, key: str) -> Cached | None:
        return self._entries.get(key)

    def put(self, key: str, body: Any, *, validator: str | None = None) -> None:
        self._entries[key] = Cached(body, self.now, validator)

    def confirm(self, key: str) -> None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries[key] = Cached(entry.body, self.now, entry.validator)

    def drop(self, key: str) -> None:
        self._entries.pop(key, None)


class MirrorSchemaStore:
    """Kept in the mirror (`schema_cache`), one row per (crm, key); read once per key per run."""

    def __init__(self, db: sqlite_utils.Database, crm: str, *, now: datetime) -> None:
        self.db = db
        self.crm = crm
        self.now = now
        self._read: dict[str, Cached | None] = {}

    def get(self, key: str) -> Cached | None:
        if key not in self._read:
            row = self.db.conn.execute(
                "SELECT body, fetched_at, validator FROM schema_cache WHERE crm = ? AND key = ?",
                [self.crm, key],
            ).fetchone()
            fetched = decode_datetime(row[1]) if row else None
            self._read[key] = Cached(loads(row[0]), fetched, row[2]) if row and fetched else None
        return self._read[key]

    def put(self, key: str, body: Any, *, validator: str | None = None) -> None:
        with transaction(self.db):
            self.db.conn.execute(
                "INSERT INTO schema_cache (crm, key, body, fetched_at, validator)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (crm, key) DO UPDATE SET"
                " body = excluded.body, fetched_at = excluded.fetched_at,"
                " validator = excluded.validator",
                [self.crm, key, dumps(body), encode_datetime(self.now), validator],
            )
        self._read[key] = Cached(body, self.now, validator)

    def confirm(self, key: str) -> None:
        with transaction(self.db):
            self.db.conn.execute(
                "UPDATE schema_cache SET fetched_at = ? WHERE crm = ? AND key = ?",
                [encode_datetime(self.now), self.crm, key],
            )
        entry = self._read.get(key)
        if entry is not None:
            self._read[key] = Cached(entry.body, self.now, entry.validator)

    def drop(self, key: str) -> None:
        with transaction(self.db):
            self.db.conn.execute(
                "DELETE FROM schema_cache WHERE crm = ? AND key = ?", [self.crm, key]
            )
        self._read[key] = None


def forget(db: sqlite_utils.Database, crm: str | None = None) -> int:
    """Drop every kept look-up (of one CRM); the next run asks the CRM again. Returns rows."""
    with transaction(db):
        if crm is None:
            cur = db.conn.execute("DELETE FROM schema_cache")
        else:
            cur = db.conn.execute("DELETE FROM schema_cache WHERE crm = ?", [crm])
    return cur.rowcount
