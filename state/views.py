"""AccountView: an account with its contacts, opportunities, roles, history; streamed.

Rules read accounts one at a time. Building each view with its own queries
would cost one round of queries per account (100,000 accounts: minutes); so
`iter_account_views` runs a fixed handful of queries, each ordered by
(crm, account id), and merges them like a sort-merge join. Memory holds one
account's rows at a time, whatever the mirror's size.

The streams, all of live (not deleted) rows:
- accounts (ordered by crm, id), with the owner joined in;
- contacts of the account (by crm, account_id, id);
- opportunities of the account;
- roles: contact_roles of the account's contacts, and roles on the account's
  opportunities (a champion who moved away still holds the role on our deal);
- former contacts: contacts whose history shows they left the account;
- history: contact_history of the account's contacts and former contacts;
- elsewhere, computed in SQL: a former contact now at another account
  ("moved"), or another live contact with the same first and last name
  (case-insensitive) at an account with a different domain ("same_name").
  Same-name matches are looked up only for contacts that hold a role or left
  the account (the people departed-champion detection cares about), through
  an index on (lower(name), account, id), at most MAX_SAME_NAME per contact;
- outside people: what an outside people-data provider named for the account
  (state/enrichment.py; empty unless [enrichment] is on).

Stored text is parsed back into model types (dates, datetimes, bools).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime
from itertools import chain
from typing import Any

import sqlite_utils

from crmsync.state.db import decode, decode_date, decode_datetime, decoder_for, dumps, loads
from crmsync.state.model import (
    COLUMNS,
    Account,
    AccountView,
    Contact,
    ContactChange,
    ContactRole,
    Elsewhere,
    ObjectType,
    Opportunity,
    OutsidePerson,
    Owner,
)

MAX_SAME_NAME = 5
MIRROR_TABLES: tuple[str, ...] = tuple(t.value for t in ObjectType)

Key = tuple[str, str]


class _Decoder:
    """Positional row -> frozen dataclass, parsing dates, datetimes and bools.

    Selects the dataclass fields the table stores (COLUMNS plus bookkeeping);
    a model field without a column yet keeps its dataclass default.

    Hot: every contact, opportunity and role of a run passes here, so the conversions
    are grouped by kind (no call per value through `decoder_for`). The rows are made by
    their class's own `__init__`: the rules and the planner read their attributes many
    times, and an instance it made reads them faster than one filled in otherwise.
    """

    def __init__(self, cls: type[Any], obj: ObjectType, prefix: str = "") -> None:
        stored = {"crm", "id", "modified_at", "deleted_at", "owned", *COLUMNS[obj]}
        self.cls = cls
        self.fields = [f.name for f in dataclasses.fields(cls) if f.name in stored]
        self.select = ", ".join(f"{prefix}{name}" for name in self.fields)
        kinds: dict[Callable[[Any], Any], list[int]] = {}
        for i, name in enumerate(self.fields):
            if _needs_decode(name):
                kinds.setdefault(_owned if name == "owned" else decoder_for(name), []).append(i)
        # by kind: (parsed when not NULL, parser), NULL-aware decoders, crmsync's own fields
        self._parse = [
            (tuple(kinds.pop(d, ())), p)
            for d, p in (
                (decode_datetime, datetime.fromisoformat),
                (decode_date, date.fromisoformat),
            )
        ]
        self._convert = [(tuple(at), convert) for convert, at in kinds.items()]
        self._positional = len(self.fields) == len(dataclasses.fields(cls))

    def __call__(self, row: Sequence[Any]) -> Any:
        values = list(row)
        for at, parse in self._parse:
            for i in at:
                v = values[i]
                if v is not None:
                    values[i] = parse(v)
        for at, convert in self._convert:
            for i in at:
                values[i] = convert(values[i])
        if self._positional:
            return self.cls(*values)
        return self.cls(**dict(zip(self.fields, values, strict=True)))


def _needs_decode(column: str) -> bool:
    return (
        column == "owned" or decode(column, None) is not None or column.endswith(("_at", "_date"))
    )


def _owned(value: str | None) -> dict[str, Any]:
    """The stored JSON of crmsync's own fields (none: {}); a copy of each text's one parse."""
    return dict(_parsed_owned(value)) if value else {}


@functools.lru_cache(maxsize=512)
def _parsed_owned(value: str) -> dict[str, Any]:
    # Most records hold one of a few texts (their fields unset, or the same few values):
    # parsed once each, not once per record. Once crmsync's writes carry a signature each
    # text is unique: a bigger cache would hold memory that grows with the org, not hits.
    return loads(value) or {}


_ACCOUNT = _Decoder(Account, ObjectType.ACCOUNT, "a.")
_CONTACT = _Decoder(Contact, ObjectType.CONTACT, "c.")
_OPPORTUNITY = _Decoder(Opportunity, ObjectType.OPPORTUNITY)
_ROLE = _Decoder(ContactRole, ObjectType.CONTACT_ROLE)


def _filter(crm_col: str, acc_col: str, crm: str | None, ids: str | None) -> str:
    sql = ""
    if crm is not None:
        sql += f" AND {crm_col} = :crm"
    if ids is not None:
        sql += f" AND {acc_col} IN (SELECT value FROM json_each(:ids))"
    return sql


_FORMER_CTE = """
former(crm, acc, cid) AS (
    SELECT DISTINCT h.crm, h.old, h.contact_id
    FROM contact_history h CROSS JOIN contacts c
    WHERE h.field = 'account_id' {fh}
      AND c.crm = h.crm AND c.id = h.contact_id
      AND c.deleted_at IS NULL AND c.account_id IS NOT h.old
)"""


def _queries(crm: str | None, ids: str | None) -> dict[str, str]:
    f = _filter
    # For a few accounts, their ids alone bound h.old: an added "h.old IS NOT NULL" made
    # the planner range over every move of the CRM instead of looking up theirs.
    not_null = " AND h.old IS NOT NULL" if ids is None else ""
    former = _FORMER_CTE.format(fh=not_null + f("h.crm", "h.old", crm, ids))
    # Join order (CROSS JOIN fixes it in SQLite). Roles are read from the contacts and
    # opportunities, in account order through their indexes, into the roles by index: the
    # rows come in the order the views take them, with no sort of every role of the CRM
    # (over a whole 1M-contact mirror, two sorts that spilled to disk and held a megabyte
    # each, for the same CPU). History: over the whole mirror, from the history (small)
    # into contacts by primary key; for a few accounts, from their contacts by index.
    roles_contacts = "contacts c CROSS JOIN contact_roles r"
    roles_opportunities = "opportunities o CROSS JOIN contact_roles r"
    if ids is None:
        history_contacts = "contact_history h CROSS JOIN contacts c"
    else:
        history_contacts = "contacts c CROSS JOIN contact_history h"
    # Every account in id order: on the primary key, which is that order. SQLite, without
    # statistics, took an index on (crm, owner_id) and then sorted every account: at 100,000
    # accounts a sort that spills to disk and holds a megabyte besides.
    accounts = "accounts a INDEXED BY sqlite_autoindex_accounts_1" if ids is None else "accounts a"
    return {
        "accounts": f"""
            SELECT {_ACCOUNT.select}, o.id, o.name, o.email, o.active, o.deleted_at
            FROM {accounts} LEFT JOIN owners o ON o.crm = a.crm AND o.id = a.owner_id
            WHERE a.deleted_at IS NULL {f("a.crm", "a.id", crm, ids)}
            ORDER BY a.crm, a.id""",
        "contacts": f"""
            SELECT c.crm, c.account_id, {_CONTACT.select} FROM contacts c
            WHERE c.deleted_at IS NULL AND c.account_id IS NOT NULL
              {f("c.crm", "c.account_id", crm, ids)}
            ORDER BY c.crm, c.account_id, c.id""",
        "opportunities": f"""
            SELECT crm, account_id, {_OPPORTUNITY.select} FROM opportunities
            WHERE deleted_at IS NULL AND account_id IS NOT NULL
              {f("crm", "account_id", crm, ids)}
            ORDER BY crm, account_id, id""",
        "roles": f"""
            SELECT c.crm AS vcrm, c.account_id AS vacc, {_prefixed(_ROLE, "r.")}
            FROM {roles_contacts}
            WHERE r.deleted_at IS NULL AND c.crm = r.crm AND c.id = r.contact_id
              AND c.deleted_at IS NULL AND c.account_id IS NOT NULL
              {f("c.crm", "c.account_id", crm, ids)}
            -- (a role both parts find, its contact at the opportunity's account, comes from
            -- the first: no duplicate to remove)
            UNION ALL
            SELECT o.crm, o.account_id, {_prefixed(_ROLE, "r.")}
            FROM {roles_opportunities} CROSS JOIN contacts c
            WHERE r.deleted_at IS NULL AND o.crm = r.crm AND o.id = r.opportunity_id
              AND o.deleted_at IS NULL AND o.account_id IS NOT NULL
              AND c.crm = r.crm AND c.id = r.contact_id AND c.deleted_at IS NULL
              AND c.account_id IS NOT o.account_id
              {f("o.crm", "o.account_id", crm, ids)}
            ORDER BY 1, 2, 4""",
        "former": f"""
            WITH {former}
            SELECT f.crm, f.acc, {_CONTACT.select}
            FROM former f CROSS JOIN contacts c
            WHERE c.crm = f.crm AND c.id = f.cid
            ORDER BY f.crm, f.acc, c.id""",
        "history": f"""
            WITH {former}
            SELECT vcrm, vacc, crm, contact_id, field, old, new, seen_at FROM (
                SELECT c.crm AS vcrm, c.account_id AS vacc, h.id AS hid, h.crm, h.contact_id,
                       h.field, h.old, h.new, h.seen_at
                FROM {history_contacts}
                WHERE c.crm = h.crm AND c.id = h.contact_id AND c.deleted_at IS NULL
                  AND c.account_id IS NOT NULL {f("c.crm", "c.account_id", crm, ids)}
                UNION ALL
                SELECT f.crm, f.acc, h.id, h.crm, h.contact_id, h.field, h.old, h.new, h.seen_at
                FROM former f CROSS JOIN contact_history h
                WHERE h.crm = f.crm AND h.contact_id = f.cid
            )
            ORDER BY vcrm, vacc, seen_at, hid""",
        "elsewhere": f"""
            WITH {former},
            holders(crm, acc, cid) AS (
                SELECT c.crm, c.account_id, c.id
                FROM {roles_contacts}
                WHERE r.deleted_at IS NULL AND c.crm = r.crm AND c.id = r.contact_id
                  AND c.deleted_at IS NULL AND c.account_id IS NOT NULL
                  {f("c.crm", "c.account_id", crm, ids)}
                UNION
                SELECT crm, acc, cid FROM former
            ),
            -- Same-name matches: for each holder, its name's live contacts in (account, id)
            -- order from the index contacts_live_name (migration m009), skipping itself and
            -- its own domain, until MAX_SAME_NAME are found: a holder reads a handful of
            -- index entries (more only when its own domain holds many of its name), so the
            -- cost grows with the holders, not with how many people share a name.
            holder_names(crm, acc, cid, ln, fn, dom) AS (
                SELECT x.crm, x.acc, x.cid, lower(c.last_name), lower(c.first_name),
                       coalesce(lower(a.domain), '')
                FROM holders x CROSS JOIN contacts c CROSS JOIN accounts a
                WHERE c.crm = x.crm AND c.id = x.cid
                  AND coalesce(c.first_name, '') <> '' AND coalesce(c.last_name, '') <> ''
                  AND a.crm = x.crm AND a.id = x.acc
            ),
            -- One row per former contact ("moved") and one per holder ("same_name"), whose
            -- matches come packed as a JSON array of [id, account, account name] (read
            -- straight off the rows the search joined; views.py unpacks them in order).
            found(vcrm, vacc, cid, how, ocid, oacc, oname, matches) AS (
                SELECT f.crm, f.acc, f.cid, 'moved', f.cid, b.id, b.name, NULL
                FROM former f CROSS JOIN contacts c CROSS JOIN accounts b
                WHERE c.crm = f.crm AND c.id = f.cid
                  AND b.crm = c.crm AND b.id = c.account_id AND b.deleted_at IS NULL
                UNION ALL
                SELECT h.crm, h.acc, h.cid, 'same_name', NULL, NULL, NULL, (
                    SELECT json_group_array(json_array(m.id, m.acc, m.name)) FROM (
                        SELECT z.id, z.account_id AS acc, w.name
                        FROM contacts z CROSS JOIN accounts w
                        WHERE z.crm = h.crm AND lower(z.last_name) = h.ln
                          AND lower(z.first_name) = h.fn AND z.deleted_at IS NULL
                          AND z.account_id IS NOT NULL AND z.id <> h.cid
                          AND w.crm = z.crm AND w.id = z.account_id AND w.deleted_at IS NULL
                          AND coalesce(lower(w.domain), '') <> h.dom
                        ORDER BY z.account_id, z.id LIMIT {MAX_SAME_NAME}) m)
                FROM holder_names h
            )
            -- (at most one "moved" row per former contact, MAX_SAME_NAME "same_name" matches)
            SELECT vcrm, vacc, cid, how, ocid, oacc, oname, matches FROM found
            ORDER BY vcrm, vacc, cid, how""",
        "outside": f"""
            SELECT crm, account_id, role, name, title, email, source FROM enrichment_people
            WHERE 1 = 1 {f("crm", "account_id", crm, ids)}
            ORDER BY crm, account_id, role, provider, n""",
    }


def _prefixed(decoder: _Decoder, prefix: str) -> str:
    return ", ".join(f"{prefix}{name}" for name in decoder.fields)


class _Stream:
    """Rows ordered by (crm, account id) in their first two columns; take one key at a time."""

    def __init__(self, rows: Iterable[Sequence[Any]], build: Callable[[Sequence[Any]], Any]):
        self._rows = iter(rows)
        self._build = build
        self._next: Sequence[Any] | None = next(self._rows, None)

    def take(self, key: Key) -> tuple[Any, ...]:
        row = self._next
        if row is None:
            return ()
        crm, account_id = key
        rows, build = self._rows, self._build
        out = []
        while row is not None:
            if row[1] == account_id and row[0] == crm:
                out.append(build(row[2:]))
            elif (row[0], row[1]) > key:
                break
            row = next(rows, None)
        self._next = row
        return tuple(out)


def _change(row: Sequence[Any]) -> ContactChange:
    crm, contact_id, field, old, new, seen_at = row
    return ContactChange(crm, contact_id, field, old, new, decode("seen_at", seen_at))


def _elsewhere(row: Sequence[Any]) -> tuple[Elsewhere, ...]:
    """A "moved" row, or a holder's "same_name" matches in (account, id) order."""
    cid, how, ocid, oacc, oname, matches = row
    if matches is None:
        return (Elsewhere(cid, ocid, oacc, oname, how),)
    return tuple(
        Elsewhere(cid, id_, acc, name, how)
        for id_, acc, name in sorted(loads(matches), key=_account_then_id)
    )


def _account_then_id(match: Sequence[str]) -> tuple[str, str]:
    return match[1], match[0]


def _outside(row: Sequence[Any]) -> OutsidePerson:
    role, name, title, email, source = row
    return OutsidePerson(role, name, title, email, source or "")


def _owner(crm: str, row: Sequence[Any]) -> Owner | None:
    oid, name, email, active, deleted_at = row
    if oid is None:
        return None
    return Owner(crm, oid, name, email, decode("active", active) and deleted_at is None)


def iter_account_views(
    db: sqlite_utils.Database,
    crm: str | None = None,
    *,
    account_ids: Iterable[str] | None = None,
) -> Iterator[AccountView]:
    """Every live account (of `crm`, or of `account_ids`) as an AccountView, ordered by (crm, id)."""
    ids = None if account_ids is None else dumps(sorted(set(account_ids)))
    params = {"crm": crm, "ids": ids}
    sql = _queries(crm, ids)
    used = {k: v for k, v in params.items() if v is not None}
    # Start every query before yielding: they then share one read snapshot.
    cursors = {name: db.conn.execute(q, used) for name, q in sql.items()}
    streams = {
        "contacts": _Stream(cursors["contacts"], _CONTACT),
        "opportunities": _Stream(cursors["opportunities"], _OPPORTUNITY),
        "roles": _Stream(cursors["roles"], _ROLE),
        "former": _Stream(cursors["former"], _CONTACT),
        "history": _Stream(cursors["history"], _change),
        "elsewhere": _Stream(cursors["elsewhere"], _elsewhere),
        "outside": _Stream(cursors["outside"], _outside),
    }
    n = len(_ACCOUNT.fields)
    try:
        for row in cursors["accounts"]:
            account: Account = _ACCOUNT(row[:n])
            key = (account.crm, account.id)
            yield AccountView(
                account=account,
                contacts=streams["contacts"].take(key),
                opportunities=streams["opportunities"].take(key),
                roles=streams["roles"].take(key),
                history=streams["history"].take(key),
                elsewhere=tuple(chain.from_iterable(streams["elsewhere"].take(key))),
                owner=_owner(account.crm, row[n:]),
                former_contacts=streams["former"].take(key),
                outside_people=streams["outside"].take(key),
            )
    finally:
        for cursor in cursors.values():
            cursor.close()


def load_contact(db: sqlite_utils.Database, crm: str, id: str) -> Contact | None:
    """One contact by id, deleted or not (None if never mirrored)."""
    row = db.conn.execute(
        f"SELECT {_CONTACT.select} FROM contacts c WHERE c.crm = ? AND c.id = ?", [crm, id]
    ).fetchone()
    return None if row is None else _CONTACT(row)


def load_account(db: sqlite_utils.Database, crm: str, id: str) -> Account | None:
    """One account by id, deleted or not (None if never mirrored)."""
    row = db.conn.execute(
        f"SELECT {_ACCOUNT.select} FROM accounts a WHERE a.crm = ? AND a.id = ?", [crm, id]
    ).fetchone()
    return None if row is None else _ACCOUNT(row)


def counts(db: sqlite_utils.Database) -> dict[str, dict[str, dict[str, int]]]:
    """{crm: {table: {"live": n, "deleted": m}}} over the mirror tables."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for table in MIRROR_TABLES:
        for crm, live, deleted in db.conn.execute(
            f"SELECT crm, sum(deleted_at IS NULL), sum(deleted_at IS NOT NULL) "
            f"FROM {table} GROUP BY crm ORDER BY crm"
        ):
            out.setdefault(crm, {})[table] = {"live": int(live), "deleted": int(deleted)}
    return out


# ---------------------------------------------------------------- owners, for task owners


def owner_with_most_accounts(db: sqlite_utils.Database, crm: str) -> str | None:
    """The active owner who owns the most live accounts (ties: the lowest id), or None:
    who gets the tasks of accounts without an active owner when no default_owner is set."""
    row = db.conn.execute(
        "SELECT a.owner_id FROM accounts a JOIN owners o ON o.crm = a.crm AND o.id = a.owner_id"
        " WHERE a.crm = ? AND a.deleted_at IS NULL AND o.deleted_at IS NULL"
        " AND coalesce(o.active, 1) = 1"
        " GROUP BY a.owner_id ORDER BY count(*) DESC, a.owner_id LIMIT 1",
        [crm],
    ).fetchone()
    return row[0] if row else None


def owner_names_by_user(
    db: sqlite_utils.Database, crm: str, user_ids: Iterable[str]
) -> dict[str, str]:
    """CRM user id -> the owner's name, for the owners whose raw record carries a userId
    (HubSpot owners: property history names users, not owners)."""
    ids = sorted({str(u) for u in user_ids if u})
    if not ids:
        return {}
    rows = db.conn.execute(
        "SELECT CAST(json_extract(raw, '$.userId') AS TEXT), name FROM owners"
        " WHERE crm = ? AND name IS NOT NULL"
        " AND CAST(json_extract(raw, '$.userId') AS TEXT) IN (SELECT value FROM json_each(?))",
        [crm, dumps(ids)],
    )
    return {str(u): n for u, n in rows}


def tasks_without_account_owner(db: sqlite_utils.Database) -> dict[str, int]:
    """Per CRM: crmsync's open tasks whose account has no active owner (so the task went
    to `default_owner`, or to the owner with the most accounts)."""
    rows = db.conn.execute(
        "SELECT t.crm, count(*) FROM tasks t"
        " JOIN accounts a ON a.crm = t.crm AND a.id = t.account_id AND a.deleted_at IS NULL"
        " LEFT JOIN owners o ON o.crm = a.crm AND o.id = a.owner_id AND o.deleted_at IS NULL"
        " WHERE t.key IS NOT NULL AND t.deleted_at IS NULL AND coalesce(t.is_closed, 0) = 0"
        " AND (a.owner_id IS NULL OR o.active = 0"
        "      OR (o.id IS NULL AND EXISTS (SELECT 1 FROM owners x WHERE x.crm = t.crm)))"
        " GROUP BY t.crm"
    )
    return {crm: n for crm, n in rows}
