"""Open the mirror: one SQLite file, owner-only, WAL, migrated; and how values are stored.

`open_db(path)` is the only way the rest of crmsync gets a database handle. It
creates the file readable by its owner only (0600) *before* SQLite writes a
byte (the mirror holds personal data), turns on WAL so readers (`crmsync
status`, the health endpoint) never block the writer, sets a busy timeout so a
reader holding a lock makes the writer wait instead of failing, and applies
pending migrations (state/migrations.py).

Transactions. sqlite-utils 4 commits every statement run outside a
transaction, and `with db.conn:` does not open one by itself. So the mirror's
write functions call `join_transaction(db)`, which opens `BEGIN IMMEDIATE`
when no transaction is open and never commits: the caller's `with db.conn:`
(or `with transaction(db):`) commits the page and its cursor together, or
rolls both back.

Storage format, one place (mirror.py encodes, views.py decodes):
- datetimes: ISO 8601 UTC text `YYYY-MM-DDTHH:MM:SS.ffffffZ` (fixed width, so
  text order is time order); columns named `*_at`
- dates: `YYYY-MM-DD`; columns named `*_date`
- booleans: INTEGER 0/1 (BOOL_COLUMNS); `amount`: REAL; everything else TEXT
- JSON columns (raw, owned, evidence, payload, ...): compact JSON text
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

log = logging.getLogger(__name__)

BUSY_TIMEOUT_SECONDS = 30.0
FILE_MODE = 0o600

BOOL_COLUMNS = frozenset(
    {"active", "email_bounced", "opted_out", "left_company", "is_closed", "is_won", "is_primary"}
)
REAL_COLUMNS = frozenset({"amount"})
# Booleans that default to True when the CRM gave nothing (model defaults).
TRUE_BY_DEFAULT = frozenset({"active"})


def open_db(path: str | os.PathLike[str]) -> sqlite_utils.Database:
    """Open (creating if needed) the mirror at `path`, 0600, WAL, migrated."""
    from state.migrations import apply_migrations  # migrations imports this module

    memory = str(path) == ":memory:"
    if not memory:
        _create_private(Path(path))
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_SECONDS)
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
    conn.execute("PRAGMA foreign_keys = OFF")
    if not memory:
        conn.execute("PRAGMA journal_mode = WAL")
        # WAL + NORMAL is durable across application crashes (SIGKILL); only an
        # OS crash or power loss can lose the last commits, never corrupt.
        conn.execute("PRAGMA synchronous = NORMAL")
    db = sqlite_utils.Database(conn)
    apply_migrations(db)
    if not memory:
        _tighten_sidecars(Path(path))
    return db


def _create_private(path: Path) -> None:
    """Create the file 0600 before SQLite touches it; tighten an existing one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    os.close(fd)
    os.chmod(path, FILE_MODE)
    _tighten_sidecars(path)


def _tighten_sidecars(path: Path) -> None:
    # SQLite creates -wal/-shm with the database file's mode; older files made by
    # other tools (or before a chmod) may be wider, so tighten whatever exists.
    for suffix in ("-wal", "-shm", "-journal"):
        side = path.with_name(path.name + suffix)
        try:
            os.chmod(side, FILE_MODE)
        except FileNotFoundError:
            pass


# ---------------------------------------------------------------- transactions


def join_transaction(db: sqlite_utils.Database) -> None:
    """Make sure a transaction is open; never commit. The caller commits.

    `BEGIN IMMEDIATE` takes the write lock up front, so a reader that began
    first makes us wait (busy_timeout) rather than fail on lock upgrade.
    """
    if not db.conn.in_transaction:
        db.conn.execute("BEGIN IMMEDIATE")


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """Commit on success, roll back on error; nested use becomes a savepoint."""
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.rollback()
        raise
    else:
        try:
            db.conn.execute("COMMIT")
        except BaseException:
            db.rollback()
            raise


@contextmanager
def rolled_back(db: sqlite_utils.Database, *, write: bool = False) -> Iterator[sqlite_utils.Database]:
    """Run the block in one transaction that is always rolled back: a preview stores nothing.

    Everything inside sees its own changes (`transaction` nests as savepoints,
    `join_transaction` joins), and the mirror is left exactly as it was. `write`
    takes the write lock up front (BEGIN IMMEDIATE) for a block that writes, so
    the first write never fails on lock upgrade; a read-only block takes none.
    A block that ends the transaction itself would have committed: that is a
    bug, and it is raised as one.
    """
    if db.conn.in_transaction:
        raise RuntimeError("rolled_back() needs a connection with no open transaction")
    db.conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield db
    except BaseException:
        db.rollback()
        raise
    if not db.conn.in_transaction:
        raise RuntimeError("a preview committed to the mirror (a bug: it must roll back)")
    db.rollback()


# ---------------------------------------------------------------- value codec


def column_kind(column: str) -> str:
    """'datetime', 'date', 'bool', 'real' or 'text', by the naming convention."""
    if column in BOOL_COLUMNS:
        return "bool"
    if column in REAL_COLUMNS:
        return "real"
    if column.endswith("_at"):
        return "datetime"
    if column.endswith("_date"):
        return "date"
    return "text"


def encode_datetime(value: datetime | date | str | None) -> str | None:
    """Aware datetime (naive = UTC), date (midnight UTC) or ISO text -> stored text."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip())
    if not isinstance(value, datetime):
        if isinstance(value, date):
            value = datetime(value.year, value.month, value.day, tzinfo=UTC)
        else:
            raise TypeError(f"not a datetime: {type(value).__name__}")
    if value.tzinfo is not None:
        offset = value.utcoffset()
        if offset:
            value = value - offset
        value = value.replace(tzinfo=None)
    # isoformat is several times faster than strftime; same fixed-width text
    return value.isoformat(timespec="microseconds") + "Z"


def encode_date(value: date | str | None) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return date.fromisoformat(value.strip()[:10]).isoformat()
    raise TypeError(f"not a date: {type(value).__name__}")


_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f", ""})


def encode_bool(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool | int):
        return 1 if value else 0
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _TRUE:
            return 1
        if low in _FALSE:
            return 0
    raise ValueError("not a boolean")


def encode_real(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("not a number")
    return float(value)


def encode_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping | list | tuple):
        return dumps(value)
    if isinstance(value, datetime):
        return encode_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


ENCODERS = {
    "datetime": encode_datetime,
    "date": encode_date,
    "bool": encode_bool,
    "real": encode_real,
    "text": encode_text,
}


def decode_datetime(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value)


def decode_date(value: str | None) -> date | None:
    if value is None:
        return None
    return date.fromisoformat(value)


def _decode_bool_false(value: Any) -> bool:
    return False if value is None else bool(value)


def _decode_bool_true(value: Any) -> bool:
    return True if value is None else bool(value)


def _identity(value: Any) -> Any:
    return value


def decoder_for(column: str) -> Callable[[Any], Any]:
    """The function turning `column`'s stored value into its model value."""
    kind = column_kind(column)
    if kind == "datetime":
        return decode_datetime
    if kind == "date":
        return decode_date
    if kind == "bool":
        return _decode_bool_true if column in TRUE_BY_DEFAULT else _decode_bool_false
    return _identity


def decode(column: str, value: Any) -> Any:
    """Stored value -> model value (datetime, date, bool, float, str)."""
    kind = column_kind(column)
    if kind == "datetime":
        return decode_datetime(value)
    if kind == "date":
        return decode_date(value)
    if kind == "bool":
        if value is None:
            return column in TRUE_BY_DEFAULT
        return bool(value)
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return encode_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)


def dumps(value: Any) -> str:
    """Canonical compact JSON: sorted keys, so equal data gives equal text."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    )


def loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def now_utc() -> datetime:
    return datetime.now(UTC)
