"""Open the mirror: one SQLite file, owner-only, WAL, migrated; and how values are stored.

`open_db(path)` is the only way the rest of crmsync gets a database handle. It
creates the file readable by its owner only (0600) *before* SQLite writes a
byte (the mirror holds personal data), turns on WAL so readers (`crmsync
status`, the health endpoint) never block the writer, sets a busy timeout so a
reader holding a lock makes the writer wait instead of failing, and applies
pending migrations (state/migrations.py).

A mirror that cannot be used is refused, never repaired: before it writes a
byte, `open_db` runs `PRAGMA quick_check`. It reads every page but skips
`integrity_check`'s index-to-table cross-checks: on a 100,000-contact mirror
(127 MB) about 0.15 s from the page cache and 1-3 s from a cold disk, against
about 0.7 s warm for `integrity_check` (issue 10). A path that is a directory, a file
that is not SQLite, a damaged file or a read-only place raises `MirrorError`
naming the file and the fix. `mirror_error()` gives the same translation for
SQLite errors met later (a full disk mid-pull): the caller's transaction has
rolled back, so nothing half-written is kept.

Transactions (state/sql.py, re-exported here). sqlite-utils 4 commits every statement run outside a
transaction, and `with db.conn:` does not open one by itself. So the mirror's
write functions call `join_transaction(db)`, which opens `BEGIN IMMEDIATE`
when no transaction is open and never commits: the caller's `with db.conn:`
(or `with transaction(db):`) commits the page and its cursor together, or
rolls both back.

Storage format, one place (mirror.py encodes, views.py decodes; a connector that
builds the stored form itself hands it over as `StoredValues`, below):
- datetimes: ISO 8601 UTC text `YYYY-MM-DDTHH:MM:SS.ffffffZ` (fixed width, so
  text order is time order); columns named `*_at`
- dates: `YYYY-MM-DD`; columns named `*_date`
- booleans: INTEGER 0/1 (BOOL_COLUMNS); `amount`: REAL; everything else TEXT
- JSON columns (raw, owned, evidence, payload, ...): compact JSON text
"""

from __future__ import annotations

import errno
import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from crmsync.state.errors import MirrorError
from crmsync.state.migrations import apply_migrations
from crmsync.state.sql import join_transaction, rolled_back, transaction

__all__ = [
    "join_transaction",
    "rolled_back",
    "transaction",
]  # re-exported: the mirror's write helpers import them from here

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
    """Open (creating if needed) the mirror at `path`, 0600, WAL, migrated.

    Raises MirrorError (naming the file and the fix) for a directory, a
    read-only place, a file that is not SQLite or a damaged mirror; the file is
    left exactly as it was.
    """
    memory = str(path) == ":memory:"
    if not memory:
        _create_private(Path(path))
    try:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_SECONDS)
    except sqlite3.Error as e:
        raise _mirror_error_or_raise(e, path) from e
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
        conn.execute("PRAGMA foreign_keys = OFF")
        if not memory:
            # Check before anything writes: switching a damaged file to WAL or
            # migrating it would change it.
            quick_check(conn, Path(path))
            conn.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL is durable across application crashes (SIGKILL); only an
            # OS crash or power loss can lose the last commits, never corrupt.
            conn.execute("PRAGMA synchronous = NORMAL")
            # 1 MiB of page cache (SQLite's default is 2 MiB), which also bounds each sort's
            # memory before it spills to a temporary file: a run's ordered streams over a 1M
            # contact mirror held 16 MiB, now 11 MiB, for the same CPU in ingest and evaluate
            # (bench/README.md); the OS's file cache holds the rest of the file.
            conn.execute("PRAGMA cache_size = -1024")
            # The same for the temporary tables a run stages in (the planner's task creates,
            # state/outbox.py), which SQLite gives a cache of their own.
            conn.execute("PRAGMA temp.cache_size = -1024")
        db = sqlite_utils.Database(conn)
        apply_migrations(db)
        restore_indexes(db)
    except BaseException as e:
        conn.close()
        if isinstance(e, sqlite3.Error):
            raise _mirror_error_or_raise(e, path) from e
        raise
    if not memory:
        _tighten_sidecars(Path(path))
    return db


def restore_indexes(db: sqlite_utils.Database, tables: Iterable[str] | None = None) -> list[str]:
    """Create the migrations' indexes that are missing; return their names.

    A first full pull builds a table's secondary indexes once, after its rows
    (state/mirror.py `defer_indexes`, rebuilt by `finish_full`). A run killed in
    between leaves them missing, so opening the mirror builds them again, except
    on a table whose full pull is still in progress (a resumed pull builds them at
    its end; another process opening the mirror meanwhile, `crmsync status`, does
    not build them under its feet). `tables` limits it to those tables. Joins the
    caller's transaction when one is open; otherwise each index commits by itself.
    """
    wanted = [(n, t, sql) for n, t, sql in _migrated_indexes() if tables is None or t in tables]
    have = {r[0] for r in db.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    missing = [(n, t, sql) for n, t, sql in wanted if n not in have]
    if not missing:
        return []
    busy: set[str] = set()
    if tables is None and "cursors" in db.table_names():
        busy = {r[0] for r in db.conn.execute("SELECT object FROM cursors WHERE mode = 'full'")}
    built = []
    for name, table, sql in missing:
        if table in busy:
            continue
        db.conn.execute(sql)
        built.append(name)
    if built:
        log.info("indexes built", extra={"indexes": built})
    return built


_MIGRATED: list[tuple[str, str, str]] = []


def _migrated_indexes() -> list[tuple[str, str, str]]:
    """(name, table, CREATE INDEX) of every index the migrations make, from a throwaway
    in-memory mirror (about 10 ms, once per process)."""
    if not _MIGRATED:
        scratch = sqlite_utils.Database(sqlite3.connect(":memory:"))
        apply_migrations(scratch)
        _MIGRATED.extend(
            scratch.conn.execute(
                "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            ).fetchall()
        )
        scratch.conn.close()
    return _MIGRATED


def quick_check(conn: sqlite3.Connection, path: Path) -> None:
    """Raise MirrorError unless SQLite's `quick_check` finds the file sound."""
    rows = conn.execute("PRAGMA quick_check(1)").fetchall()
    if rows and rows[0][0] != "ok":
        raise _damaged(path, str(rows[0][0]))


# ---------------------------------------------------------------- errors

REBUILD = "move it aside (keep it for a post-mortem) and run `crmsync sync --full` to rebuild it"
_DISK_FULL = ("SQLITE_FULL",)
_WRITE_FAILED = ("SQLITE_IOERR",)
_READ_ONLY = ("SQLITE_READONLY", "SQLITE_PERM")
_DAMAGED = ("SQLITE_CORRUPT",)


def mirror_error(error: BaseException, path: str | os.PathLike[str]) -> MirrorError | None:
    """The MirrorError for an SQLite error on the mirror at `path`, or None when it is no
    fault of the file (a bug in crmsync: a bad statement, a closed connection)."""
    if isinstance(error, MirrorError):
        return error
    if not isinstance(error, sqlite3.Error):
        return None
    name = getattr(error, "sqlite_errorname", "") or ""
    text = str(error)
    path = Path(path)
    if name.startswith(_DISK_FULL) or "disk is full" in text:
        return MirrorError(
            f"could not write the mirror {path}: the disk is full ({text})",
            fix="Free space and run again; nothing half-written was kept.",
        )
    if name.startswith(_WRITE_FAILED) or "disk I/O error" in text:
        return MirrorError(
            f"could not write the mirror {path}: {text} ({name or 'I/O error'}; the disk may be "
            "full or failing)",
            fix="Free space (or check the disk) and run again; nothing half-written was kept.",
        )
    if name.startswith(_READ_ONLY) or "readonly" in text:
        return _read_only(path, text)
    if name.startswith("SQLITE_NOTADB") or "not a database" in text:
        return MirrorError(
            f"{path} is not a crmsync mirror (not an SQLite database)",
            fix=f"Check [mirror] path in sync.toml; if this was the mirror, {REBUILD}.",
        )
    if name.startswith(_DAMAGED) or "malformed" in text:
        return _damaged(path, text)
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return _cannot_open(path, text)
    if name.startswith("SQLITE_BUSY") or "database is locked" in text:
        return MirrorError(
            f"the mirror {path} stayed locked by another process for {BUSY_TIMEOUT_SECONDS:.0f} s",
            fix="Run again when the other crmsync command has finished.",
        )
    return None


def _mirror_error_or_raise(error: sqlite3.Error, path: str | os.PathLike[str]) -> BaseException:
    return mirror_error(error, path) or error


@contextmanager
def mirror_errors(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn an SQLite error on the mirror inside the block into its MirrorError."""
    try:
        yield
    except sqlite3.Error as e:
        err = mirror_error(e, path)
        if err is None:
            raise
        raise err from e


def _damaged(path: Path, what: str) -> MirrorError:
    what = " ".join(what.replace("*** in database main ***", "").split())  # one line
    return MirrorError(
        f"the mirror {path} is damaged (SQLite quick_check: {what[:200]}); crmsync will not "
        "read or change it",
        fix=f"Nothing was changed: {REBUILD}.",
    )


def _read_only(path: Path, what: str) -> MirrorError:
    return MirrorError(
        f"cannot write the mirror {path}: it or its folder is read-only ({what})",
        fix=f"Make {path} and its folder writable by this user (SQLite writes {path.name}-wal "
        "and -shm beside it), or set [mirror] path to a writable place.",
    )


def _cannot_open(path: Path, what: str) -> MirrorError:
    folder = path.parent
    if not os.access(folder, os.W_OK):
        return _read_only(path, f"{what}; folder {folder} is not writable")
    return MirrorError(
        f"cannot open the mirror {path} ({what})",
        fix="Check [mirror] path in sync.toml and the file's permissions.",
    )


def _create_private(path: Path) -> None:
    """Create the file 0600 before SQLite touches it; tighten an existing one."""
    if path.is_dir():
        raise MirrorError(
            f"the mirror path {path} is a directory",
            fix=f'Set [mirror] path in sync.toml to a file name, e.g. "{path / "crmsync.db"}".',
        )
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        existed = path.exists()
        fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    except OSError as e:
        raise _os_error(path, e) from e
    os.close(fd)
    if existed:
        _check_header(path)
    os.chmod(path, FILE_MODE)
    _tighten_sidecars(path)


_SQLITE_HEADER = b"SQLite format 3\x00"


def _check_header(path: Path) -> None:
    """Refuse, before anything is changed, a file that is neither empty nor SQLite."""
    with open(path, "rb") as f:
        head = f.read(len(_SQLITE_HEADER))
    if head and head != _SQLITE_HEADER:
        raise MirrorError(
            f"{path} is not a crmsync mirror (not an SQLite database)",
            fix=f"Check [mirror] path in sync.toml; if this was the mirror, {REBUILD}.",
        )


def _os_error(path: Path, e: OSError) -> MirrorError:
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return _read_only(path, e.strerror or str(e))
    if e.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return MirrorError(
            f"could not create the mirror {path}: {e.strerror}",
            fix="Free space and run again; nothing half-written was kept.",
        )
    if e.errno == errno.ENOTDIR:
        return MirrorError(
            f"cannot create the mirror {path}: a part of its folder is a file ({e.strerror})",
            fix="Set [mirror] path in sync.toml to a path in a folder.",
        )
    return MirrorError(
        f"cannot open the mirror {path} ({e.strerror or e})",
        fix="Check [mirror] path in sync.toml and the file's permissions.",
    )


def _tighten_sidecars(path: Path) -> None:
    # SQLite creates -wal/-shm with the database file's mode; older files made by
    # other tools (or before a chmod) may be wider, so tighten whatever exists.
    for suffix in ("-wal", "-shm", "-journal"):
        side = path.with_name(path.name + suffix)
        try:
            os.chmod(side, FILE_MODE)
        except FileNotFoundError:
            pass


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
    if type(value) is datetime and value.tzinfo is UTC:  # what the connectors hand over
        return value.isoformat(timespec="microseconds")[:-6] + "Z"  # "+00:00" -> "Z"
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


class StoredValues(Mapping[str, Any]):
    """A record's canonical values already in their stored form, as a connector hands them.

    `row` holds the values of `columns` (state.model.COLUMNS of the object) in that order,
    each as the mirror stores it (datetimes as the fixed-width text above, booleans 0/1,
    dates `YYYY-MM-DD`); `raw_json` and `owned_json` are the record's raw and owned as
    `dumps` writes them (None for an empty mapping), `modified_at` the record's
    modified_at as stored (None: the mirror encodes the record's). The mirror writes and compares them
    as they are, with no per-value conversion (state/mirror.py `encode_row`). Read as a
    mapping it gives the model values (aware datetimes, dates, bools, floats; None stays
    None), decoded on access: a CrmRecord's `values` reads the same either way.
    """

    __slots__ = ("columns", "row", "raw_json", "owned_json", "modified_at", "_index")

    def __init__(
        self,
        columns: tuple[str, ...],
        row: tuple[Any, ...],
        raw_json: str | None,
        owned_json: str | None,
        modified_at: str | None = None,
    ) -> None:
        if len(row) != len(columns):
            raise ValueError("a stored row needs one value per column")
        self.columns = columns
        self.row = row
        self.raw_json = raw_json
        self.owned_json = owned_json
        self.modified_at = modified_at
        self._index = _column_index(columns)

    def __getitem__(self, key: str) -> Any:
        i, decode_one = self._index[key]
        value = self.row[i]
        return None if value is None else decode_one(value)

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    def __repr__(self) -> str:
        return f"StoredValues({dict(self)!r})"


_STORED_DECODERS: dict[str, Callable[[Any], Any]] = {
    "datetime": datetime.fromisoformat,
    "date": date.fromisoformat,
    "bool": bool,
    "real": float,
    "text": lambda value: value,
}
_INDEXES: dict[tuple[str, ...], dict[str, tuple[int, Callable[[Any], Any]]]] = {}


def _column_index(columns: tuple[str, ...]) -> dict[str, tuple[int, Callable[[Any], Any]]]:
    index = _INDEXES.get(columns)
    if index is None:
        index = {c: (i, _STORED_DECODERS[column_kind(c)]) for i, c in enumerate(columns)}
        _INDEXES[columns] = index
    return index


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


# One encoder, built once: json.dumps with these options would build a new one per call,
# which is most of its cost for the small objects the mirror stores (bench/ingest_speed.py).
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
)


def dumps(value: Any) -> str:
    """Canonical compact JSON: sorted keys, so equal data gives equal text."""
    return _CANONICAL.encode(value)


def loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def now_utc() -> datetime:
    return datetime.now(UTC)
