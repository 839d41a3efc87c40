"""What the write-back reads from and writes to the mirror's tables (accounts, contacts, tasks).

Two halves, one per direction:

- `Reader`: the rows the planner compares its intent with (sync/plan.py):
  accounts and their contacts with the values crmsync owns, crmsync's tasks by
  key, owners and whether they are active, what crmsync last wrote. Read in
  batches of account ids, never one query per account.
- `reflect`: after a write landed, make the mirror show what the CRM now holds
  (owned values merged, a created task inserted with its new id), inside the
  outbox's transaction that marks the row done (state/outbox.py
  `record_results`). So the next plan updates a task rather than creating
  another, even before the next pull; the next pull overwrites these values
  with the CRM's own.

`is_closed(status)` is the one place that says which task statuses are closed.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

import sqlite_utils

from crmsync.state.db import dumps, encode_date
from crmsync.state.model import (
    SIGNATURE,
    CrmRecord,
    ObjectType,
    OutboxItem,
    TaskKey,
    WriteKind,
    person_name,
)

CHUNK = 500  # ids per query

CLOSED_STATUSES = frozenset({"completed", "complete"})  # canonical, as the connectors map them


def is_closed(status: str | None, closed: object = None) -> bool:
    """Whether a task is closed: the CRM's own closed flag if the mirror has it, else its status."""
    if closed is not None:
        return bool(closed)
    return (status or "").strip().lower() in CLOSED_STATUSES


# ---------------------------------------------------------------- rows


@dataclass(frozen=True)
class AccountRow:
    id: str
    name: str
    owner_id: str | None
    deleted: bool
    owned: Mapping[str, Any]


@dataclass(frozen=True)
class ContactRow:
    id: str
    account_id: str | None
    name: str
    title: str | None
    deleted: bool
    owned: Mapping[str, Any]


@dataclass(frozen=True)
class TaskRow:
    id: str
    key: str
    account_id: str | None
    contact_id: str | None
    owner_id: str | None
    subject: str | None
    body: str | None
    status: str | None
    priority: str | None
    is_closed: bool
    deleted: bool
    owned: Mapping[str, Any] = field(default_factory=dict)  # key, signature

    def current(self) -> dict[str, Any]:
        """The task's signed fields and its signature, as the CRM holds them."""
        return {
            "subject": self.subject, "body": self.body, "priority": self.priority,
            "owner_id": self.owner_id, "status": self.status,
            SIGNATURE: self.owned.get(SIGNATURE),
        }  # fmt: skip


@dataclass(frozen=True)
class Named:
    """A contact as a task names it, wherever the contact is now."""

    id: str
    name: str
    title: str | None = None


# ---------------------------------------------------------------- reads


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def chunks(items: Sequence[str], size: int = CHUNK) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


_TASK_COLUMNS_READ = (
    "id", "key", "account_id", "contact_id", "owner_id", "subject", "body", "status", "priority",
    "is_closed", "deleted_at", "owned",
)  # fmt: skip
_TASKS_T = "SELECT " + ", ".join(f"t.{c}" for c in _TASK_COLUMNS_READ)


def _task(r: Mapping[str, Any]) -> TaskRow:
    return TaskRow(
        id=r["id"],
        key=r["key"],
        account_id=r["account_id"],
        contact_id=r["contact_id"],
        owner_id=r["owner_id"],
        subject=r["subject"],
        body=r["body"],
        status=r["status"],
        priority=r["priority"],
        is_closed=is_closed(r["status"], r["is_closed"]),
        deleted=r["deleted_at"] is not None,
        owned=_json(r["owned"]) or {},
    )


class Reader:
    """The mirror queries the planner needs, batched by id."""

    def __init__(self, db: sqlite_utils.Database, crm: str) -> None:
        self.db = db
        self.crm = crm

    def _in(
        self, sql: str, ids: Sequence[str], extra: Sequence[Any] = ()
    ) -> Iterator[dict[str, Any]]:
        for chunk in chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            yield from self.db.query(sql.format(ids=marks), [self.crm, *extra, *chunk])

    # A run's planner reads crmsync's tasks a chunk of accounts at a time (sync/plan.py
    # `Planner`): `index_tasks` once, then `tasks_of` each chunk's accounts, then
    # `deleted_accounts_with_tasks` for the accounts no chunk had. Memory holds one chunk's tasks.

    def index_tasks(self, accounts: Sequence[str] | None = None) -> int:
        """Note, in a temporary table, which account each of crmsync's task keys is settled
        with: the account its key names (`TaskKey`), else (a key that is not one) the account
        of its first open task by id, else none (nothing to settle). Returns the keys noted.

        With `accounts` (a run evaluating only some accounts: state/dirty.py), only the keys
        that can be settled with them: those naming one of them, and those of tasks the CRM
        holds under one of them. Found through the tasks' key and account indexes, so the
        cost follows those accounts, not the CRM's tasks."""
        conn = self.db.conn
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS plan_tasks "
            "(key TEXT PRIMARY KEY, account_id TEXT, done INTEGER NOT NULL DEFAULT 0)"
        )
        conn.execute(
            "CREATE INDEX IF NOT EXISTS temp.plan_tasks_account ON plan_tasks (account_id)"
        )
        conn.execute("DELETE FROM temp.plan_tasks")
        if accounts is None:
            rows: Iterable[Sequence[Any]] = conn.execute(
                "SELECT key, account_id, status, is_closed, deleted_at FROM tasks"
                " WHERE crm = ? AND key IS NOT NULL ORDER BY key, id",
                [self.crm],
            )
        else:
            rows = self._task_rows(self._keys_of(accounts))
        return conn.executemany(
            "INSERT INTO temp.plan_tasks (key, account_id) VALUES (?, ?)", _settled_with(rows)
        ).rowcount

    def _kinds(self) -> list[str]:
        """The kinds (`<kind>:` before a key's first ':') of the CRM's task keys, found by
        skipping from one kind's keys to the next on the tasks_key index (a seek per kind,
        not a read of every key)."""
        conn, crm = self.db.conn, self.crm
        kinds: list[str] = []
        low, op = "", ">="
        while True:
            (key,) = conn.execute(
                f"SELECT min(key) FROM tasks WHERE crm = ? AND key {op} ?", [crm, low]
            ).fetchone()
            if key is None:
                return kinds
            kind, colon, _rest = key.partition(":")
            if colon:
                kinds.append(kind)
                low, op = kind + ";", ">="  # ';' follows ':': past every `<kind>:` key
            else:
                low, op = key, ">"

    def _keys_of(self, accounts: Sequence[str]) -> list[str]:
        """The task keys naming one of `accounts` (`<kind>:<crm>:<account>:`, for every kind
        the CRM's tasks have) or held under one of them."""
        conn, crm = self.db.conn, self.crm
        if not accounts:
            return []
        kinds = self._kinds()
        keys: set[str] = set()
        for chunk in chunks(sorted(set(accounts))):
            ids = dumps(list(chunk))
            keys.update(k for (k,) in conn.execute(
                "SELECT key FROM tasks WHERE crm = ? AND key IS NOT NULL"
                " AND account_id IN (SELECT value FROM json_each(?))", [crm, ids]
            ))  # fmt: skip
            # ':' + 1 is ';': a key range per (kind, account) prefix, on the tasks_key index
            prefixes = dumps([f"{kind}:{crm}:{a}:" for a in chunk for kind in kinds])
            keys.update(k for (k,) in conn.execute(
                "SELECT t.key FROM json_each(?) p CROSS JOIN tasks t WHERE t.crm = ?"
                " AND t.key >= p.value AND t.key < substr(p.value, 1, length(p.value) - 1) || ';'",
                [prefixes, crm],
            ))  # fmt: skip
        return sorted(keys)

    def _task_rows(self, keys: Sequence[str]) -> Iterator[Sequence[Any]]:
        """(key, account_id, status, is_closed, deleted_at) of the tasks with these keys, by
        key then id."""
        for chunk in chunks(list(keys)):
            yield from self.db.conn.execute(
                "SELECT key, account_id, status, is_closed, deleted_at FROM tasks"
                " WHERE crm = ? AND key IN (SELECT value FROM json_each(?)) ORDER BY key, id",
                [self.crm, dumps(list(chunk))],
            )

    def tasks_of(self, account_ids: Sequence[str]) -> dict[str, list[TaskRow]]:
        """crmsync's tasks settled with these accounts (`index_tasks`), by key; noted as done."""
        out: dict[str, list[TaskRow]] = defaultdict(list)
        for chunk in chunks(sorted(set(account_ids))):
            ids = dumps(list(chunk))
            # CROSS JOIN: from the chunk's keys noted to their tasks (tasks_key), not through
            # every task of the CRM
            rows = self.db.conn.execute(
                f"{_TASKS_T} FROM temp.plan_tasks p CROSS JOIN tasks t ON t.crm = ? AND t.key = p.key"
                " WHERE p.account_id IN (SELECT value FROM json_each(?)) ORDER BY t.key, t.id",
                [self.crm, ids],
            )
            names = [d[0] for d in rows.description]
            for values in rows:
                r = dict(zip(names, values, strict=True))
                out[r["key"]].append(_task(r))
            self.db.conn.execute(
                "UPDATE temp.plan_tasks SET done = 1"
                " WHERE account_id IN (SELECT value FROM json_each(?))",
                [ids],
            )
        return dict(sorted(out.items()))

    def deleted_accounts_with_tasks(self) -> list[str]:
        """Deleted accounts whose crmsync tasks no `tasks_of` read yet (no chunk had them)."""
        # CROSS JOIN: from the keys noted (those of the accounts a run evaluates), not from
        # every account of the CRM
        rows = self.db.conn.execute(
            "SELECT DISTINCT p.account_id FROM temp.plan_tasks p CROSS JOIN accounts a"
            " ON a.crm = ? AND a.id = p.account_id"
            " WHERE p.done = 0 AND a.deleted_at IS NOT NULL ORDER BY p.account_id",
            [self.crm],
        )
        return [r[0] for r in rows]

    def people(self, ids: Sequence[str]) -> dict[str, Named]:
        """Contacts by id wherever they are now (a champion who moved to another account)."""
        sql = (
            "select id, first_name, last_name, title from contacts where crm = ? and id in ({ids})"
        )
        return {
            r["id"]: Named(r["id"], person_name(r["first_name"], r["last_name"], r["id"]),
                           r["title"])  # fmt: skip
            for r in self._in(sql, ids)
        }

    def owner_states(self) -> dict[str, bool]:
        """Owner id -> active, for every owner the mirror knows."""
        rows = self.db.query(
            "select id, active from owners where crm = ? and deleted_at is null", [self.crm]
        )
        return {r["id"]: r["active"] != 0 for r in rows}

    def inactive_owners(self) -> frozenset[str]:
        rows = self.db.query(
            "select id from owners where crm = ? and active = 0 and deleted_at is null", [self.crm]
        )
        return frozenset(r["id"] for r in rows)

    def all_owner_names(self) -> dict[str, str]:
        """Owner id -> name, for every owner the mirror knows (deleted ones included)."""
        rows = self.db.query("select id, name from owners where crm = ?", [self.crm])
        return {r["id"]: r["name"] for r in rows if r["name"]}


def _settled_with(rows: Iterable[Sequence[Any]]) -> Iterator[tuple[str, str | None]]:
    """(key, account it is settled with) from (key, account_id, status, is_closed,
    deleted_at) rows by key then id (`Reader.index_tasks`)."""
    for key, group in groupby(rows, key=lambda r: r[0]):
        parsed = TaskKey.parse(key)
        if parsed is not None:
            yield key, parsed.account_id
        else:
            yield key, next(
                (r[1] for r in group if not is_closed(r[2], r[3]) and r[4] is None), None
            )


# ---------------------------------------------------------------- reflect a landed write


_TASK_COLUMNS = ("subject", "body", "status", "priority", "due_date", "owner_id",
                 "account_id", "contact_id")  # fmt: skip


def reflect(
    db: sqlite_utils.Database,
    item: OutboxItem,
    crm_id: str | None,
    record: CrmRecord | None = None,
) -> None:
    """Make the mirror show what the CRM now holds after `item` landed as `crm_id`.

    `record` is the task as the CRM holds it when a create was found by its key
    after a crash. Joins the caller's transaction.
    """
    crm = item.crm
    payload = dict(item.payload)
    if item.kind is WriteKind.UPDATE_ACCOUNT:
        _merge_owned(db, ObjectType.ACCOUNT, crm, item.target_id, payload)
    elif item.kind is WriteKind.UPDATE_CONTACT:
        _merge_owned(db, ObjectType.CONTACT, crm, item.target_id, payload)
    elif item.kind is WriteKind.CREATE_TASK:
        _insert_task(db, crm, crm_id or item.target_id, payload, record)
    else:
        _update_task(db, crm, crm_id or item.target_id, item.kind, payload)
    if item.kind in (WriteKind.UPDATE_TASK, WriteKind.COMPLETE_TASK) and SIGNATURE in payload:
        _merge_owned(db, ObjectType.TASK, crm, crm_id or item.target_id,
                     {SIGNATURE: payload[SIGNATURE]})  # fmt: skip


def _merge_owned(
    db: sqlite_utils.Database,
    table: ObjectType,
    crm: str,
    record_id: str | None,
    payload: Mapping[str, Any],
) -> None:
    if not record_id:
        return
    row = db.conn.execute(
        f"SELECT owned FROM {table.value} WHERE crm = ? AND id = ?", [crm, record_id]
    ).fetchone()
    if row is None:
        return
    owned = json.loads(row[0]) if row[0] else {}
    owned.update(payload)
    db.conn.execute(
        f"UPDATE {table.value} SET owned = ? WHERE crm = ? AND id = ?",
        [dumps(owned), crm, record_id],
    )


def _insert_task(
    db: sqlite_utils.Database,
    crm: str,
    task_id: str | None,
    payload: Mapping[str, Any],
    record: CrmRecord | None,
) -> None:
    if not task_id:
        return
    values = {c: payload.get(c) for c in _TASK_COLUMNS}
    if record is not None:  # found by key: the CRM's own values
        values.update({c: record.values.get(c, values.get(c)) for c in _TASK_COLUMNS})
    values["due_date"] = encode_date(values.get("due_date"))
    closed = is_closed(str(values.get("status") or ""))
    generation = _task_generation(db, crm)
    db.conn.execute(
        "INSERT INTO tasks (crm, id, key, account_id, contact_id, owner_id, subject, body,"
        " status, priority, due_date, is_closed, owned, synced_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (crm, id) DO UPDATE SET key = excluded.key, subject = excluded.subject,"
        " body = excluded.body, status = excluded.status, priority = excluded.priority,"
        " owner_id = excluded.owner_id, is_closed = excluded.is_closed, deleted_at = NULL",
        [
            crm, task_id, payload.get("key"), values["account_id"], values["contact_id"],
            values["owner_id"], values["subject"], values["body"], values["status"],
            values["priority"], values["due_date"], int(closed),
            dumps({"key": payload.get("key"), SIGNATURE: payload.get(SIGNATURE)}), generation,
        ],
    )  # fmt: skip


def _update_task(
    db: sqlite_utils.Database,
    crm: str,
    task_id: str | None,
    kind: WriteKind,
    payload: Mapping[str, Any],
) -> None:
    if not task_id:
        return
    sets = {c: payload[c] for c in _TASK_COLUMNS if c in payload}
    if "due_date" in sets:
        sets["due_date"] = encode_date(sets["due_date"])
    if kind is WriteKind.COMPLETE_TASK:
        sets.setdefault("status", "completed")
    if "status" in sets:
        sets["is_closed"] = int(is_closed(str(sets["status"])))
    if not sets:
        return
    assignments = ", ".join(f"{c} = ?" for c in sets)
    db.conn.execute(
        f"UPDATE tasks SET {assignments} WHERE crm = ? AND id = ?", [*sets.values(), crm, task_id]
    )


def _task_generation(db: sqlite_utils.Database, crm: str) -> int:
    row = db.conn.execute(
        "SELECT generation FROM cursors WHERE crm = ? AND object = ?", [crm, ObjectType.TASK.value]
    ).fetchone()
    return int(row[0] or 0) if row else 0
