"""The emulator's in-memory org: tables of records, their indexes, and every write.

A record is a Python list (a row) whose slots follow the table's column
numbers, so a million contacts cost rows, not a million dicts; a field added at
run time gets the next column and older, shorter rows read it as null. Per
table the store keeps:

- `rows`: Id -> row (rows are mutated in place by writes);
- `id_order`: Ids sorted, the default query order;
- the modstamp index, parallel lists of (SystemModstamp, Id) sorted ascending,
  so `WHERE SystemModstamp >= X` starts with a bisect. Every write gets a
  stamp strictly greater than any before (per emulator), so a write appends;
  the row's previous entry is left behind as stale and skipped (compacted
  when stale entries outnumber live ones);
- `deleted_log` for getDeleted, `bin` (the recycle bin, oldest first), and
  lazily built external-id indexes.

The recycle bin keeps a deleted row 15 days, then purges it for good (gone
from queryAll, getDeleted's `earliestDateAvailable` moves); when it holds more
than `bin_capacity` rows, the oldest that have been in it at least two hours
go first ("When your organization reaches the Recycle Bin limit, [Salesforce]
automatically removes the oldest records (if they have been in the Recycle Bin
for at least two hours)": Salesforce help, quoted in api-facts §10; capacity is
25 records per MB of data storage). Purges run by the store's clock, at each
API request (`expire_bin`).

Field-level security (security.py): each API request runs as a user (the
session's); `readable` / `editable` say whether that user may see or write a
field that needs a grant (`Field.restricted`). `acting_user` None is the
admin (in-process calls): everything.

Writes through the API are validated like Salesforce validates them
(field existence, create/update permission, rough types, reference ids,
required fields) and raise `WriteError(code, message, fields)`; writes made by
tests through the sandbox (`system=True`) skip permission and reference checks.
"""

from __future__ import annotations

import bisect
import heapq
import re
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Set
from datetime import UTC, datetime, timedelta
from typing import Any

from crmsync.sandbox.common import id18, sf_id

from .compound import address_value
from .schema import (
    CLOSED_TASK_STATUSES,
    ID_TYPES,
    NUMBER_TYPES,
    Field,
    SObject,
    canonical_date,
    canonical_datetime,
    format_ms,
    infer_field,
    parse_datetime,
    standard_objects,
)

Row = list[Any]
Clock = Callable[[], datetime]

_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
INTEGRATION_USER_ID = sf_id("005", 999_999_999)
INTEGRATION_USERNAME = "crmsync@sandbox.test"
ADMIN_PROFILE_ID = sf_id("00e", 1)
STANDARD_PROFILE_ID = sf_id("00e", 2)
# A fresh org's profiles the sandbox seeds (and the one its dataset users get by default).
PROFILES = {ADMIN_PROFILE_ID: "System Administrator", STANDARD_PROFILE_ID: "Standard User"}
ORG_ID = sf_id("00D", 1)
BIN_DAYS = 15
BIN_MIN_SECONDS = 2 * 3600  # a full bin only purges rows that sat in it this long
BIN_CAPACITY = 25 * 1024  # 25 records per MB of data storage (/limits says 1024 MB)
PERMISSION_OBJECTS = frozenset({"PermissionSet", "FieldPermissions", "PermissionSetAssignment"})
_ID_COUNTER_START = 1_000_000_000


_CASCADE: dict[str, tuple[tuple[str, str], ...]] = {
    "Account": (("Contact", "AccountId"), ("Opportunity", "AccountId")),
    "Contact": (("OpportunityContactRole", "ContactId"),),
    "Opportunity": (("OpportunityContactRole", "OpportunityId"),),
}


class WriteError(Exception):
    """A record Salesforce would reject: code, message, fields (the SaveResult error)."""

    def __init__(self, code: str, message: str, fields: Iterable[str] = (), status: int = 400):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.fields = list(fields)
        self.status = status

    def as_error(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


class UnknownObject(KeyError):
    pass


class Table:
    """One object's schema and rows."""

    def __init__(self, sobj: SObject) -> None:
        self.sobj = sobj
        self.name = sobj.name
        self.fields: dict[str, Field] = {}  # lower name -> visible field
        self.cols: dict[str, int] = {}  # lower name -> column
        self.width = 0
        for f in sobj.fields:
            self._add_column(f)
        self.rows: dict[str, Row] = {}
        self.id_order: list[str] = []
        self.mod_stamps: list[str] = []
        self.mod_ids: list[str] = []
        self.mod_stale = 0
        self.deleted_log: list[tuple[str, str]] = []  # (deletedDate, Id) ascending
        self.bin: deque[tuple[float, str, str]] = deque()  # (entered, deletedDate, Id), oldest first
        self.ext_index: dict[int, dict[Any, set[str]]] = {}
        self.earliest_deleted = ""
        self.c_id = self.cols["id"]
        self.c_deleted = self.cols.get("isdeleted")
        self.c_stamp = self.cols["systemmodstamp"]
        self.c_modified = self.cols["lastmodifieddate"]
        self.c_created = self.cols["createddate"]

    # -- schema
    def _add_column(self, f: Field) -> int:
        col = self.width
        self.width += 1
        self.fields[f.name.lower()] = f
        self.cols[f.name.lower()] = col
        self._schema_changed()
        return col

    def _schema_changed(self) -> None:
        """Recompute the per-schema caches the load path uses."""
        self.loader: dict[str, tuple[int, Callable[[Any], Any] | None]] = {}
        self.defaults: list[tuple[int, Any]] = [
            (self.cols[f.name.lower()], f.default)
            for f in self.sobj.fields
            if f.default is not None and f.name.lower() in self.cols
        ]
        for name in ("ownerid", "createdbyid", "lastmodifiedbyid"):
            if name in self.cols:
                self.defaults.append((self.cols[name], INTEGRATION_USER_ID))
        derived = {"Contact": ("name",), "User": ("name",), "Task": ("isclosed", "accountid"),
                   "Opportunity": ("isclosed",)}.get(self.name, ())
        self.derived_cols: list[int] = [self.cols[n] for n in derived if n in self.cols]

    def add_field(self, f: Field) -> int:
        if f.name.lower() in self.fields:
            raise WriteError(
                "DUPLICATE_DEVELOPER_NAME",
                f"There is already a field named {f.name} on {self.name}.",
            )
        self.sobj.fields.append(f)
        return self._add_column(f)

    def remove_field(self, name: str) -> None:
        f = self.fields.pop(name.lower(), None)
        if f is None:
            raise KeyError(name)
        col = self.cols.pop(name.lower())
        self.sobj.fields.remove(f)
        self._schema_changed()
        self.ext_index.pop(col, None)
        for row in self.rows.values():  # the data goes with the field
            if col < len(row):
                row[col] = None

    def field(self, name: str) -> Field | None:
        return self.fields.get(name.lower())

    def visible_fields(self) -> list[Field]:
        return list(self.sobj.fields)

    @staticmethod
    def get(row: Row, col: int) -> Any:
        return row[col] if col < len(row) else None

    def value(self, row: Row, name: str) -> Any:
        f = self.fields.get(name.lower())
        if f is not None and f.type == "address":  # built from its components (compound.py)
            return address_value(self, row, f.name)
        col = self.cols.get(name.lower())
        return None if col is None else (row[col] if col < len(row) else None)

    @staticmethod
    def put(row: Row, col: int, value: Any) -> None:
        if col >= len(row):
            row.extend([None] * (col + 1 - len(row)))
        row[col] = value

    def is_deleted(self, row: Row) -> bool:
        return self.c_deleted is not None and bool(row[self.c_deleted])

    # -- indexes
    def index_stamp(self, stamp: str, id_: str) -> None:
        stamps, ids = self.mod_stamps, self.mod_ids
        if not stamps or (stamp, id_) > (stamps[-1], ids[-1]):
            stamps.append(stamp)
            ids.append(id_)
        else:
            i = bisect.bisect_left(stamps, stamp)
            while i < len(stamps) and stamps[i] == stamp and ids[i] < id_:
                i += 1
            if i < len(stamps) and stamps[i] == stamp and ids[i] == id_:
                return  # already indexed (a backdated write reusing an old stamp)
            stamps.insert(i, stamp)
            ids.insert(i, id_)

    def index_id(self, id_: str) -> None:
        order = self.id_order
        if not order or id_ > order[-1]:
            order.append(id_)
        else:
            bisect.insort(order, id_)

    def rebuild_indexes(self) -> None:
        self.id_order = sorted(self.rows)
        c = self.c_stamp
        pairs = sorted((row[c], id_) for id_, row in self.rows.items())
        self.mod_stamps = [p[0] for p in pairs]
        self.mod_ids = [p[1] for p in pairs]
        self.mod_stale = 0
        self.ext_index.clear()

    def compact_stamps(self) -> None:
        c, rows = self.c_stamp, self.rows
        keep = [
            (s, i)
            for s, i in zip(self.mod_stamps, self.mod_ids, strict=True)
            if (r := rows.get(i)) is not None and r[c] == s
        ]
        self.mod_stamps = [p[0] for p in keep]
        self.mod_ids = [p[1] for p in keep]
        self.mod_stale = 0

    def iter_by_stamp(
        self, low: str | None = None, inclusive: bool = True, high: tuple[str, bool] | None = None
    ) -> Iterator[Row]:
        """Rows in (SystemModstamp, Id) order, from `low` on (up to `high`, value and inclusive)."""
        stamps, ids, rows, c = self.mod_stamps, self.mod_ids, self.rows, self.c_stamp
        if low is None:
            start = 0
        elif inclusive:
            start = bisect.bisect_left(stamps, low)
        else:
            start = bisect.bisect_right(stamps, low)
        end = len(stamps)
        if high is not None:
            end = (bisect.bisect_right if high[1] else bisect.bisect_left)(stamps, high[0], start)
        for i in range(start, end):
            row = rows.get(ids[i])
            if row is not None and row[c] == stamps[i]:
                yield row

    def iter_by_id(self, low: tuple[str, bool] | None = None) -> Iterator[Row]:
        """Rows in Id order, from `low` (value, inclusive) on."""
        rows, order = self.rows, self.id_order
        start = 0
        if low is not None:
            start = (bisect.bisect_left if low[1] else bisect.bisect_right)(order, low[0])
        for i in range(start, len(order)):
            yield rows[order[i]]

    def ext_lookup(self, col: int, value: Any) -> set[str]:
        index = self.ext_index.get(col)
        if index is None:
            index = {}
            for id_, row in self.rows.items():
                v = self.get(row, col)
                if v is not None:
                    index.setdefault(_ext_key(v), set()).add(id_)
            self.ext_index[col] = index
        return index.get(_ext_key(value), set())

    def ext_update(self, id_: str, row: Row, old: Mapping[int, Any]) -> None:
        for col, index in self.ext_index.items():
            if col in old and old[col] is not None:
                index.get(_ext_key(old[col]), set()).discard(id_)
            v = self.get(row, col)
            if v is not None:
                index.setdefault(_ext_key(v), set()).add(id_)


def _ext_key(v: Any) -> Any:
    return v.lower() if isinstance(v, str) else v


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Store:
    """All tables, the monotonic modstamp clock, and the write paths."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or _utcnow
        self.lock = threading.RLock()
        self._last_ms = 0
        self._counter = _ID_COUNTER_START
        self.running_user_id = INTEGRATION_USER_ID
        self.acting_user: str | None = None  # the API request's user; None = admin
        self.bin_capacity: int | None = BIN_CAPACITY
        self.perm_version = 0
        self._grants: dict[str, tuple[int, dict[str, tuple[bool, bool]]]] = {}
        self._last_loaded = ""
        self.tables: dict[str, Table] = {}
        self.by_prefix: dict[str, Table] = {}
        self.reset()

    # ------------------------------------------------------------ schema
    def reset(self) -> None:
        """Empty tables with the standard schema, the standard profiles and the integration user."""
        with self.lock:
            self._last_ms = 0  # a new org: stamps follow the clock again, even one moved back
            self.tables = {o.name.lower(): Table(o) for o in standard_objects()}
            self.by_prefix = {t.sobj.key_prefix: t for t in self.tables.values()}
            for t in self.tables.values():
                t.earliest_deleted = self.stamp_at(self.clock() - timedelta(days=BIN_DAYS))
            self.perm_version += 1
            self._grants.clear()
            for pid, name in PROFILES.items():
                self.create("Profile", {"Id": pid, "Name": name})
            # The user crmsync logs in as: a real org has it in its User table (and
            # permission sets are assigned to it by Id).
            self.create("User", {
                "Id": INTEGRATION_USER_ID, "Username": INTEGRATION_USERNAME, "FirstName": "crmsync",
                "LastName": "Integration", "Email": INTEGRATION_USERNAME, "IsActive": True,
                "ProfileId": ADMIN_PROFILE_ID,
            })  # fmt: skip

    def table(self, name: str) -> Table:
        t = self.tables.get(name.lower())
        if t is None:
            raise UnknownObject(name)
        return t

    def table_for_id(self, id_: Any) -> Table | None:
        return self.by_prefix.get(id_[:3]) if isinstance(id_, str) else None

    def row_for_id(self, id_: Any) -> tuple[Table, Row] | tuple[None, None]:
        t = self.table_for_id(id_)
        if t is None:
            return None, None
        row = t.rows.get(id_) or (t.rows.get(id18(id_)) if len(id_) == 15 else None)
        return (t, row) if row is not None else (None, None)

    def add_field(self, obj: str, f: Field) -> None:
        with self.lock:
            name = "Task" if obj.lower() in ("activity", "event") else obj
            self.table(name).add_field(f)

    def remove_field(self, obj: str, name: str) -> None:
        with self.lock:
            self.table(obj).remove_field(name)

    # ------------------------------------------------------------ clock
    def stamp_at(self, dt: datetime) -> str:
        return format_ms(int(dt.timestamp() * 1000))

    def next_stamp(self) -> str:
        """A SystemModstamp strictly greater than every earlier one."""
        ms = max(int(self.clock().timestamp() * 1000), self._last_ms + 1)
        self._last_ms = ms
        return format_ms(ms)

    def _observe(self, stamp: str) -> None:
        """Keep later stamps above one a test set explicitly."""
        if stamp > format_ms(self._last_ms):
            self._last_ms = int(parse_datetime(stamp).timestamp() * 1000)

    def now(self) -> datetime:
        return self.clock()

    def new_id(self, t: Table) -> str:
        while True:
            self._counter += 1
            id_ = sf_id(t.sobj.key_prefix, self._counter)
            if id_ not in t.rows:
                return id_

    # ------------------------------------------------------------ load
    def load(self, dataset: Mapping[str, Any] | None) -> None:
        """Replace every record (and the custom schema) with a dataset.

        `dataset` is the whole dataset dict (its "salesforce" part is used) or
        that part itself: object name -> iterable of records.
        """
        objects: Mapping[str, Any] = dataset or {}
        if set(objects) & {"salesforce", "hubspot", "manifest"}:
            objects = objects.get("salesforce") or {}
        self.load_stream((obj, rec) for obj, records in objects.items() for rec in records)

    def load_stream(self, records: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Replace every record from a stream of (object name, record) pairs."""
        with self.lock:
            self.reset()
            pending: dict[str, set[str]] = {}
            max_stamp = ""
            fallback = ""
            for obj, rec in records:
                t = self.tables.get(obj.lower())
                if t is None:
                    raise ValueError(
                        f"dataset object {obj!r} is not emulated; the Salesforce sandbox has "
                        + ", ".join(x.name for x in self.tables.values())
                    )
                stamp = self._load_record(t, rec, pending.setdefault(t.name, set()))
                if stamp is None:
                    fallback = fallback or self.stamp_at(self.clock())
                    stamp = self._load_record_stamp(t, rec, fallback)
                if stamp > max_stamp:
                    max_stamp = stamp
            for name, keys in pending.items():
                t = self.table(name)
                for key in sorted(keys):
                    if t.field(key) is None:
                        t.add_field(infer_field(key, []))
            loaded_at = self.clock().timestamp()
            for t in self.tables.values():
                t.deleted_log.sort()
                # a dataset is the org as it is now: its deleted rows enter the bin now
                t.bin = deque((loaded_at, d, i) for d, i in t.deleted_log)
                t.rebuild_indexes()
            users = self.tables["user"]
            c_profile = users.cols["profileid"]
            for row in users.rows.values():
                if Table.get(row, c_profile) is None:
                    Table.put(row, c_profile, STANDARD_PROFILE_ID)
            if max_stamp:
                self._last_ms = max(
                    self._last_ms, int(parse_datetime(max_stamp).timestamp() * 1000)
                )

    def _load_record_stamp(self, t: Table, rec: Mapping[str, Any], fallback: str) -> str:
        row = t.rows[self._last_loaded]
        row[t.c_stamp] = row[t.c_modified] = fallback
        if row[t.c_created] is None:
            row[t.c_created] = fallback
        if t.is_deleted(row):
            t.deleted_log.append((fallback, row[t.c_id]))
        return fallback

    def _load_record(self, t: Table, rec: Mapping[str, Any], pending: set[str]) -> str | None:
        """Add one dataset record; returns its SystemModstamp (None: it has no timestamps)."""
        row: Row = [None] * t.width
        loader = t.loader
        for key, value in rec.items():
            spec = loader.get(key)
            if spec is None:
                spec = self._loader_spec(t, key, value, pending)
                if spec is None:
                    continue
                if len(row) < t.width:
                    row.extend([None] * (t.width - len(row)))
            if value is not None:
                col, conv = spec
                row[col] = value if conv is None else conv(value)
        id_ = row[t.c_id] or self.new_id(t)
        row[t.c_id] = id_
        stamp = row[t.c_stamp] or row[t.c_modified] or row[t.c_created]
        row[t.c_stamp] = stamp
        if row[t.c_modified] is None or row[t.c_modified] == stamp:
            row[t.c_modified] = stamp  # one string object for both (memory at 1M rows)
        if row[t.c_created] is None or row[t.c_created] == stamp:
            row[t.c_created] = stamp
        for col, default in t.defaults:
            if row[col] is None:
                row[col] = default
        if t.derived_cols:
            given = {c for c in t.derived_cols if row[c] is not None}
            self._derive(t, row, changed=None, stamp=stamp, given=given)
        t.rows[id_] = row
        self._last_loaded = id_
        if stamp is not None and t.is_deleted(row):
            t.deleted_log.append((stamp, id_))
        return stamp

    def _loader_spec(
        self, t: Table, key: str, value: Any, pending: set[str]
    ) -> tuple[int, Callable[[Any], Any] | None] | None:
        """How to load dataset key `key` (adding a custom field for an unknown one)."""
        f = t.fields.get(key.lower())
        if f is None:
            if key == "attributes":
                return None
            if value is None:
                pending.add(key)
                return None
            f = infer_field(key, [value])
            t.add_field(f)
            pending.discard(key)
        spec = (t.cols[f.name.lower()], _LOADERS.get(f.type))
        t.loader[key] = spec
        return spec

    # ------------------------------------------------------------ reads
    def record(self, t: Table, row: Row, fields: Iterable[Field] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields if fields is not None else t.visible_fields():
            out[f.name] = t.get(row, t.cols[f.name.lower()])
        return out

    def records(self, obj: str) -> list[dict[str, Any]]:
        with self.lock:
            t = self.table(obj)
            return [self.record(t, t.rows[i]) for i in t.id_order]

    def get_row(self, t: Table, id_: str) -> Row | None:
        row = t.rows.get(id_)
        if row is None and len(id_) == 15:
            row = t.rows.get(id18(id_))
        return row

    # ------------------------------------------------------------ writes
    def prepare(
        self,
        t: Table,
        values: Mapping[str, Any],
        *,
        creating: bool,
        system: bool,
        row: Row | None = None,
    ) -> dict[int, Any]:
        """Validate and convert one record's values to {column: value} (`row`: the record an
        update changes, for the checks that compare with it)."""
        out: dict[int, Any] = {}
        for key, value in values.items():
            if key == "attributes" or (key.lower() == "id" and not creating):
                continue
            f = t.field(key)
            if f is None:
                raise WriteError(
                    "INVALID_FIELD", f"No such column '{key}' on sobject of type {t.name}", [key]
                )
            if not system and (
                not (f.createable if creating else f.updateable) or not self.editable(t, f)
            ):
                raise WriteError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {f.name}. Please check the security "
                    "settings of this field and verify that it is read/write for your profile "
                    "or permission set.",
                    [f.name],
                )
            out[t.cols[f.name.lower()]] = self._coerce(f, value, check_refs=not system)
        if not system:
            self._check_required(t, out, creating)
            if t.name in PERMISSION_OBJECTS:
                from . import security

                security.validate(self, t, out, None if creating else row)
        return out

    # ------------------------------------------------------------ field-level security
    def readable(self, t: Table, f: Field) -> bool:
        """May the request's user see this field (describe, SOQL, record reads)?"""
        return not f.restricted or self.acting_user is None or self._grant(t, f)[0]

    def editable(self, t: Table, f: Field) -> bool:
        """May the request's user write this field?"""
        return not f.restricted or self.acting_user is None or self._grant(t, f)[1]

    def _grant(self, t: Table, f: Field) -> tuple[bool, bool]:
        from . import security

        user = self.acting_user or ""
        cached = self._grants.get(user)
        if cached is None or cached[0] != self.perm_version:
            cached = (self.perm_version, security.grants(self, user))
            self._grants[user] = cached
        return cached[1].get(f"{t.name}.{f.name}".lower(), (False, False))

    def _check_required(self, t: Table, out: Mapping[int, Any], creating: bool) -> None:
        missing = []
        for f in t.visible_fields():
            col = t.cols[f.name.lower()]
            if creating and f.required and out.get(col) is None:
                missing.append(f.name)
            elif not creating and col in out and out[col] is None and (f.required or (not f.nillable and f.type != "boolean")):
                missing.append(f.name)
        if missing:
            raise WriteError(
                "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing
            )

    def _coerce(self, f: Field, value: Any, *, check_refs: bool) -> Any:
        if value is None or value == "":
            return False if f.type == "boolean" else None
        bad = WriteError(
            "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{f.label}: value not of required type: {value}", [f.name]
        )
        try:
            return self._coerce_typed(f, value, check_refs)
        except WriteError:
            raise
        except (ValueError, TypeError):
            raise bad from None

    def _coerce_typed(self, f: Field, value: Any, check_refs: bool) -> Any:
        t = f.type
        if t == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise ValueError(value)
        if t in NUMBER_TYPES:
            if isinstance(value, bool):
                raise ValueError(value)
            num = float(value) if isinstance(value, str) else value
            if not isinstance(num, int | float):
                raise ValueError(value)
            return int(num) if t == "int" else num
        if t == "date":
            return canonical_date(value)
        if t == "datetime":
            return canonical_datetime(value)
        if t in ID_TYPES:
            return self._coerce_ref(f, value, check_refs)
        if isinstance(value, dict | list):
            raise ValueError(value)
        text = value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
        if f.length and len(text) > f.length:
            raise WriteError(
                "STRING_TOO_LONG",
                f"{f.label}: data value too large: {text[:40]} (max length={f.length})",
                [f.name],
            )
        if t == "email" and not _EMAIL_RE.match(text):
            raise WriteError(
                "INVALID_EMAIL_ADDRESS", f"{f.label}: invalid email address: {text}", [f.name]
            )
        return sys.intern(text) if t in ("picklist", "combobox") else text

    def _coerce_ref(self, f: Field, value: Any, check_refs: bool) -> str:
        if not isinstance(value, str) or not _ID_RE.match(value):
            raise WriteError("MALFORMED_ID", f"{f.label}: id value of incorrect type: {value}", [f.name])
        value = id18(value)
        if not check_refs:
            return sys.intern(value)
        target, row = self.row_for_id(value)
        if target is None and f.reference_to and value[:3] not in self.by_prefix:
            raise WriteError(
                "FIELD_INTEGRITY_EXCEPTION",
                f"{f.label}: id value of incorrect type: {value}",
                [f.name],
            )
        if target is not None and f.reference_to and target.name not in f.reference_to:
            raise WriteError(
                "FIELD_INTEGRITY_EXCEPTION",
                f"{f.label}: id value of incorrect type: {value}",
                [f.name],
            )
        if row is None:
            raise WriteError(
                "INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id", [f.name]  # noqa: F541
            )
        if target is not None and target.is_deleted(row):
            raise WriteError("ENTITY_IS_DELETED", "entity is deleted", [f.name])
        if f.name == "OwnerId" and target is not None and target.name == "User" and target.value(row, "IsActive") is False:
            raise WriteError(
                "INACTIVE_OWNER_OR_USER", f"operation performed with inactive user [{value}] as owner", [f.name]
            )
        return sys.intern(value)

    def insert(self, t: Table, cols: Mapping[int, Any], *, system: bool = False) -> str:
        """Create a record from prepared columns; returns its Id."""
        with self.lock:
            id_ = cols.get(t.c_id) if system else None
            if id_ in t.rows:
                raise WriteError("DUPLICATE_VALUE", f"duplicate value found: Id duplicates value on record with id: {id_}", ["Id"])
            id_ = id_ or self.new_id(t)
            row: Row = [None] * t.width
            for col, v in cols.items():
                Table.put(row, col, v)
            row[t.c_id] = id_
            if t.c_deleted is not None:
                row[t.c_deleted] = bool(row[t.c_deleted])
            self._apply_defaults(t, row, creating=True, given=set(cols))
            stamp = cols.get(t.c_stamp) if system else None  # a test may backdate (P5)
            stamp = stamp or self.next_stamp()
            if row[t.c_created] is None or not system:
                row[t.c_created] = stamp
            self._derive(t, row, changed=None, stamp=stamp, given=set(cols))
            row[t.c_stamp] = row[t.c_modified] = stamp
            self._observe(stamp)
            t.rows[id_] = row
            t.index_id(id_)
            t.index_stamp(stamp, id_)
            t.ext_update(id_, row, {})
            self._after_write(t, row)
            if t.name in PERMISSION_OBJECTS:
                self.perm_version += 1
            return id_

    def apply_update(self, t: Table, row: Row, cols: Mapping[int, Any], *, system: bool = False) -> None:
        with self.lock:
            old = {c: Table.get(row, c) for c in list(cols) + list(t.ext_index)}
            for col, v in cols.items():
                if col != t.c_stamp:  # touch() sets the stamp and re-indexes the row by it
                    Table.put(row, col, v)
            stamp = (cols.get(t.c_stamp) if system else None) or self.next_stamp()
            self._derive(t, row, changed=set(cols), stamp=stamp)
            self.touch(t, row, stamp)
            t.ext_update(row[t.c_id], row, old)
            self._after_write(t, row)
            if t.name in PERMISSION_OBJECTS:
                self.perm_version += 1

    def touch(self, t: Table, row: Row, stamp: str | None = None) -> None:
        """Give a row a new SystemModstamp/LastModifiedDate and re-index it."""
        stamp = stamp or self.next_stamp()
        self._observe(stamp)
        if row[t.c_stamp] == stamp:
            row[t.c_modified] = stamp
            return
        row[t.c_stamp] = row[t.c_modified] = stamp
        if "lastmodifiedbyid" in t.cols:
            Table.put(row, t.cols["lastmodifiedbyid"], self.running_user_id)
        t.index_stamp(stamp, row[t.c_id])
        t.mod_stale += 1
        if t.mod_stale > 1000 and t.mod_stale * 2 > len(t.mod_stamps):
            t.compact_stamps()

    def create(self, obj: str, values: Mapping[str, Any], *, system: bool = True) -> str:
        with self.lock:
            t = self.table(obj)
            cols = self.prepare(t, values, creating=True, system=system)
            return self.insert(t, cols, system=system)

    def update(self, obj: str, id_: str, values: Mapping[str, Any], *, system: bool = True) -> None:
        with self.lock:
            t = self.table(obj)
            row = self.live_row(t, id_)
            cols = self.prepare(t, values, creating=False, system=system, row=row)
            self.apply_update(t, row, cols, system=system)

    def live_row(self, t: Table, id_: str) -> Row:
        row = self.get_row(t, id_)
        if row is None:
            raise WriteError("NOT_FOUND", "The requested resource does not exist", status=404)
        if t.is_deleted(row):
            raise WriteError("ENTITY_IS_DELETED", "entity is deleted", status=404)
        return row

    def delete(self, obj: str, id_: str) -> None:
        """Soft delete into the recycle bin (IsDeleted = true; seen by queryAll)."""
        with self.lock:
            t = self.table(obj)
            row = self.live_row(t, id_)
            if t.c_deleted is None:
                raise WriteError("DELETE_FAILED", f"{t.name} records cannot be deleted")
            row[t.c_deleted] = True
            self.touch(t, row)
            self._to_bin(t, row)
            self._cascade(t.name, {row[t.c_id]})

    def _cascade(self, obj: str, ids: set[str]) -> None:
        """Salesforce deletes an account's contacts and opportunities, and their contact roles."""
        for child_name, field in _CASCADE.get(obj, ()):
            child = self.tables[child_name.lower()]
            col = child.cols.get(field.lower())
            if col is None:
                continue
            hit = [r for r in child.rows.values() if Table.get(r, col) in ids and not child.is_deleted(r)]
            for r in hit:
                r[child.c_deleted] = True  # type: ignore[index]
                self.touch(child, r)
                self._to_bin(child, r)
            if hit:
                self._cascade(child.name, {r[child.c_id] for r in hit})

    def _to_bin(self, t: Table, row: Row) -> None:
        """A row just soft-deleted: into getDeleted's log and the recycle bin."""
        stamp, rid = row[t.c_stamp], row[t.c_id]
        t.deleted_log.append((stamp, rid))
        t.bin.append((self.clock().timestamp(), stamp, rid))

    def expire_bin(self) -> int:
        """Purge what the recycle bin no longer keeps, by the store's clock; returns how many.

        Rows deleted 15 days ago go; then, while the bin holds more than
        `bin_capacity` rows, the oldest that sat in it two hours or more.
        `earliestDateAvailable` moves to the deletion date of the newest row
        purged (api-facts §10: "the timestamp (UTC) of the last physically
        deleted object"), so a client whose cursor is older knows it missed some.
        """
        with self.lock:
            now = self.clock().timestamp()
            purged = 0
            for t in self.tables.values():
                while t.bin and t.bin[0][0] <= now - BIN_DAYS * 86400:
                    purged += self._purge_binned(t, *t.bin.popleft())
            if self.bin_capacity is None:
                return purged
            held = sum(len(t.bin) for t in self.tables.values())
            fronts = [(t.bin[0], n, t) for n, t in enumerate(self.tables.values()) if t.bin]
            heapq.heapify(fronts)
            while held > self.bin_capacity and fronts:
                (entered, stamp, rid), n, t = fronts[0]
                if entered > now - BIN_MIN_SECONDS:
                    break
                t.bin.popleft()
                held -= 1
                purged += self._purge_binned(t, entered, stamp, rid)
                if t.bin:
                    heapq.heapreplace(fronts, (t.bin[0], n, t))
                else:
                    heapq.heappop(fronts)
            return purged

    def _purge_binned(self, t: Table, entered: float, stamp: str, rid: str) -> int:
        row = t.rows.get(rid)
        if row is None or not t.is_deleted(row) or row[t.c_stamp] != stamp:
            return 0  # purged by hand, or deleted again since (a newer bin entry holds it)
        self._hard_delete(t, row)
        t.earliest_deleted = max(t.earliest_deleted, stamp)
        return 1

    def purge(self, obj: str, id_: str) -> None:
        """Hard delete (as an emptied recycle bin or Bulk hardDelete): gone from queryAll and
        getDeleted; earliestDateAvailable moves to now."""
        with self.lock:
            t = self.table(obj)
            row = self.get_row(t, id_)
            if row is None:
                raise WriteError("NOT_FOUND", "The requested resource does not exist", status=404)
            self._hard_delete(t, row)
            t.earliest_deleted = self.next_stamp()

    def _hard_delete(self, t: Table, row: Row) -> None:
        with self.lock:
            rid = row[t.c_id]
            del t.rows[rid]
            i = bisect.bisect_left(t.id_order, rid)
            if i < len(t.id_order) and t.id_order[i] == rid:
                del t.id_order[i]
            t.mod_stale += 1
            log, entry = t.deleted_log, (row[t.c_stamp], rid)
            i = bisect.bisect_left(log, entry)
            if i < len(log) and log[i] == entry:
                del log[i]
            elif any(i2 == rid for _, i2 in log):
                t.deleted_log = [(d, i2) for d, i2 in log if i2 != rid]
            for index in t.ext_index.values():
                for ids in index.values():
                    ids.discard(rid)

    def merge(self, obj: str, master_id: str, loser_ids: Iterable[str]) -> None:
        """Merge losers into master: losers deleted with MasterRecordId, children re-pointed."""
        with self.lock:
            t = self.table(obj)
            master = self.live_row(t, master_id)
            losers = [self.live_row(t, i) for i in loser_ids]
            loser_set = {r[t.c_id] for r in losers}
            c_master = t.cols.get("masterrecordid")
            for row in losers:
                if c_master is not None:
                    Table.put(row, c_master, master[t.c_id])
                row[t.c_deleted] = True  # type: ignore[index]
                self.touch(t, row)
                self._to_bin(t, row)
            self._repoint(t.name, loser_set, master[t.c_id])
            self.touch(t, master)

    def _repoint(self, obj: str, losers: set[str], master: str) -> None:
        for child in self.tables.values():
            cols = [
                child.cols[f.name.lower()]
                for f in child.visible_fields()
                if f.type == "reference" and obj in f.reference_to
                and f.name not in ("MasterRecordId", "CreatedById", "LastModifiedById")
            ]
            if not cols:
                continue
            for row in list(child.rows.values()):
                hit = [c for c in cols if Table.get(row, c) in losers]
                if hit:
                    for c in hit:
                        row[c] = master
                    stamp = self.next_stamp()
                    self._derive(child, row, changed=set(hit), stamp=stamp)
                    self.touch(child, row, stamp)

    # ------------------------------------------------------------ derived values
    def _apply_defaults(self, t: Table, row: Row, *, creating: bool, given: set[int]) -> None:
        for f in t.visible_fields():
            col = t.cols[f.name.lower()]
            if f.default is not None and Table.get(row, col) is None and col not in given:
                Table.put(row, col, f.default)
        if creating:
            for name in ("ownerid", "createdbyid", "lastmodifiedbyid"):
                user_col = t.cols.get(name)
                if user_col is not None and Table.get(row, user_col) is None:
                    Table.put(row, user_col, self.running_user_id)

    def _derive(
        self, t: Table, row: Row, *, changed: set[int] | None, stamp: str | None, given: Set[int] = frozenset()
    ) -> None:
        """Fields Salesforce computes: Name, Task.IsClosed/AccountId, Opportunity.IsClosed/IsWon.

        `changed` is None for a new record; `given` are columns the caller set
        explicitly (a dataset or a test may set computed flags itself).
        """
        cols = t.cols
        if "firstname" in cols and "name" in cols and (changed is None or changed & {cols["firstname"], cols["lastname"]}):
            parts = [Table.get(row, cols["firstname"]), Table.get(row, cols["lastname"])]
            if cols["name"] not in given or changed is not None:
                Table.put(row, cols["name"], " ".join(p for p in parts if p) or None)
        if t.name == "Task":
            c_closed, c_done = cols["isclosed"], cols["completeddatetime"]
            if c_closed not in given or changed is not None:
                status = Table.get(row, cols["status"]) or ""
                row[c_closed] = status.lower() in CLOSED_TASK_STATUSES
            if row[c_closed] and Table.get(row, c_done) is None:
                Table.put(row, c_done, stamp)
            elif not row[c_closed]:
                Table.put(row, c_done, None)
            if cols["accountid"] not in given:
                Table.put(row, cols["accountid"], self._task_account(row, cols))
        elif t.name == "Opportunity":
            c_stage, c_closed, c_won = cols["stagename"], cols["isclosed"], cols["iswon"]
            if changed is None and c_closed in given:
                return
            if changed is None or (c_stage in changed and c_closed not in changed):
                stage = (Table.get(row, c_stage) or "").lower()
                row[c_closed] = stage.startswith("closed")
                row[c_won] = stage == "closed won"

    def _task_account(self, row: Row, cols: Mapping[str, int]) -> Any:
        for col in (cols["whatid"], cols["whoid"]):
            t, target = self.row_for_id(Table.get(row, col))
            if t is None or target is None:
                continue
            if t.name == "Account":
                return target[t.c_id]
            acc = t.cols.get("accountid")
            if acc is not None and Table.get(target, acc):
                return Table.get(target, acc)
        return Table.get(row, cols["accountid"])

    def _after_write(self, t: Table, row: Row) -> None:
        """A closed Task moves LastActivityDate of its contact and account (no modstamp change)."""
        if t.name != "Task" or not row[t.cols["isclosed"]]:
            return
        day = Table.get(row, t.cols["activitydate"])
        if not day:
            return
        for col in (t.cols["whoid"], t.cols["accountid"]):
            target_t, target = self.row_for_id(Table.get(row, col))
            if target_t is None or target is None or "lastactivitydate" not in target_t.cols:
                continue
            c = target_t.cols["lastactivitydate"]
            if (Table.get(target, c) or "") < day:
                Table.put(target, c, day)

    # ------------------------------------------------------------ replication
    def updated_ids(self, t: Table, start: str, end: str) -> list[str]:
        with self.lock:
            return [
                row[t.c_id]
                for row in t.iter_by_stamp(start)
                if row[t.c_stamp] < end and not t.is_deleted(row)
            ]

    def deleted_records(self, t: Table, start: str, end: str) -> list[dict[str, str]]:
        with self.lock:
            log = t.deleted_log
            i = bisect.bisect_left(log, (start, ""))
            out = []
            for d, id_ in log[i:]:
                if d >= end:
                    break
                row = t.rows.get(id_)
                if row is not None and t.is_deleted(row):
                    out.append({"id": id_, "deletedDate": d})
            return out


def _to_bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() == "true"


def _intern(value: Any) -> Any:
    return sys.intern(value) if isinstance(value, str) else value


def _empty_none(value: Any) -> Any:
    return None if value == "" else value


def _text(value: Any) -> Any:
    """Short texts (names, titles) repeat across a big org: share one object each."""
    if value == "":
        return None
    return sys.intern(value) if isinstance(value, str) and len(value) <= 32 else value


def _date(value: Any) -> str:
    return sys.intern(canonical_date(value))


_LOADERS: dict[str, Callable[[Any], Any]] = {
    "reference": _intern,
    "datetime": canonical_datetime,
    "date": _date,
    "boolean": _to_bool,
    "picklist": _intern,
    "combobox": _intern,
    "string": _text,
    **{t: _empty_none for t in ("email", "textarea", "multipicklist", "url", "phone")},
}
