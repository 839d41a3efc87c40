"""One person across Salesforce and HubSpot: the link table and the linked evidence.

Both CRMs are mirrored into the same file (rows carry `crm`). `refresh` links a
Salesforce record and a HubSpot record of the same person (contacts) or company
(accounts), one to one, and stores the pairs in `identity_links` with how they
were matched (docs/identity.md says the same in an admin's words):

1. integration_id: the HubSpot record carries the id of the Salesforce record
   HubSpot's native Salesforce integration synced it with (contacts
   `salesforcecontactid`, companies `salesforceaccountid`: api-facts §24; read
   from the record's `raw`). A Salesforce merge is followed to the survivor; an
   id the mirror does not hold live is ignored; a 15-character id matches the
   18-character id it begins. Two HubSpot records naming one Salesforce record:
   ambiguous, neither linked.
2. kept through a merge: a link whose record was merged away in either CRM
   moves to the survivor (`repoint_links`, called by state/mirror.py `repoint`)
   and is kept while both records are live, unless step 1 links either record
   otherwise.
3. email (contacts) / domain (accounts), among the records steps 1-2 left
   unlinked: compared case-insensitively (a domain without `www.` or a URL
   scheme). Linked only when exactly one live record on each side has the value;
   when either side has more (an e-mail shared by two people), the candidates
   are stored in `identity_ambiguous` and reported, never linked.

Each refresh reads the live rows of both CRMs set-based and writes only the
pairs that changed; sync/identity.py skips it after a pull that changed no
account or contact. `with_linked_evidence` gives the rules one person with the
evidence of both: a linked contact's latest activity is the later of the two, a
bounce in either is a bounce, and the other CRM's buying roles are added as
contact-level roles. Nothing here writes to a CRM; sync/identity.py decides
where linked people's tasks and fields go.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from crmsync.state.db import decode, dumps, encode_datetime, loads
from crmsync.state.model import AccountView, Contact, ContactRole, ObjectType
from crmsync.state.sql import join_transaction, transaction
from crmsync.state.text import site_domain

SALESFORCE, HUBSPOT = "salesforce", "hubspot"
INTEGRATION_ID, EMAIL, DOMAIN = "integration_id", "email", "domain"

# object -> (HubSpot property holding the Salesforce id (api-facts §24), matching column)
_OBJECTS: Mapping[ObjectType, tuple[str, str]] = {
    ObjectType.ACCOUNT: ("salesforceaccountid", DOMAIN),
    ObjectType.CONTACT: ("salesforcecontactid", EMAIL),
}
_MAX_MERGE_HOPS = 20


@dataclass(frozen=True)
class Link:
    object: str
    salesforce_id: str
    hubspot_id: str
    how: str
    kept_through_merge: bool
    linked_at: datetime | None


@dataclass(frozen=True)
class Ambiguous:
    """Records that matched more than one record on `how`: reported, not linked."""

    object: str
    how: str
    salesforce_ids: tuple[str, ...]
    hubspot_ids: tuple[str, ...]


@dataclass
class RefreshSummary:
    links: Counter[tuple[str, str]] = dataclasses.field(default_factory=Counter)  # (object, how)
    ambiguous: Counter[str] = dataclasses.field(default_factory=Counter)  # by object
    ambiguous_before: int = 0  # candidates the previous refresh reported (both objects)
    added: int = 0
    removed: int = 0

    def as_dict(self) -> dict[str, int]:
        out = {f"{o}_{h}": n for (o, h), n in sorted(self.links.items())}
        out.update({f"{o}_ambiguous": n for o, n in sorted(self.ambiguous.items())})
        out.update(added=self.added, removed=self.removed)
        return out


# ---------------------------------------------------------------- refresh


def refresh(db: sqlite_utils.Database, *, now: datetime) -> RefreshSummary:
    """Recompute the links and the ambiguous candidates of both objects (commits)."""
    summary = RefreshSummary()
    with transaction(db):
        for obj in _OBJECTS:
            _refresh_object(db, obj, now, summary)
        db.conn.execute(
            "INSERT INTO identity_refresh (id, refreshed_at) VALUES (1, ?)"
            " ON CONFLICT (id) DO UPDATE SET refreshed_at = excluded.refreshed_at",
            [encode_datetime(now)],
        )
    return summary


def refreshed_at(db: sqlite_utils.Database) -> datetime | None:
    """When the links were last recomputed (None: never)."""
    row = db.conn.execute("SELECT refreshed_at FROM identity_refresh WHERE id = 1").fetchone()
    return None if row is None else decode("refreshed_at", row[0])


def _refresh_object(
    db: sqlite_utils.Database, obj: ObjectType, now: datetime, summary: RefreshSummary
) -> None:
    table = obj.value
    prop, key_kind = _OBJECTS[obj]
    sf = _Records(db, table, SALESFORCE)
    hs = _Records(db, table, HUBSPOT)
    prior = {
        (s, h): (how, bool(kept), at)
        for s, h, how, kept, at in db.conn.execute(
            "SELECT salesforce_id, hubspot_id, how, kept_through_merge, linked_at"
            " FROM identity_links WHERE object = ?",
            [table],
        )
    }
    new: dict[tuple[str, str], tuple[str, bool]] = {}
    taken_sf: set[str] = set()
    taken_hs: set[str] = set()
    ambiguous: list[tuple[str, list[str], list[str]]] = []

    def take(s: str, h: str, how: str, kept: bool) -> None:
        new[(s, h)] = (how, kept)
        taken_sf.add(s)
        taken_hs.add(h)

    # 1. The Salesforce id the native integration keeps on the HubSpot record.
    claims: dict[str, list[str]] = defaultdict(list)
    path = f"$.properties.{prop}"
    for hid, value in db.conn.execute(
        f"SELECT id, CAST(json_extract(raw, '{path}') AS TEXT) FROM {table}"
        f" WHERE crm = 'hubspot' AND deleted_at IS NULL AND merged_into IS NULL"
        f" AND coalesce(json_extract(raw, '{path}'), '') <> ''"
        f" ORDER BY id"
    ):
        sid = sf.live_survivor(str(value).strip())
        if sid is not None:
            claims[sid].append(hid)
    for sid, hids in sorted(claims.items()):
        if len(hids) == 1:
            take(sid, hids[0], INTEGRATION_ID, False)
        else:
            ambiguous.append((INTEGRATION_ID, [sid], sorted(hids)))

    # 2. Links carried through a merge in either CRM (repoint_links marks them).
    for (s, h), (how, kept, _at) in sorted(prior.items()):
        s2, h2 = sf.live_survivor(s), hs.live_survivor(h)
        if s2 is None or h2 is None or s2 in taken_sf or h2 in taken_hs:
            continue
        if kept or (s2, h2) != (s, h):
            take(s2, h2, how, True)

    # 3. E-mail (contacts) / domain (accounts), one live record on each side.
    sf_keys = sf.keys(key_kind)
    hs_keys = hs.keys(key_kind)
    for value in sorted(sf_keys.keys() & hs_keys.keys()):
        sids = [i for i in sf_keys[value] if i not in taken_sf]
        hids = [i for i in hs_keys[value] if i not in taken_hs]
        if not sids or not hids:
            continue
        if len(sf_keys[value]) == 1 and len(hs_keys[value]) == 1:
            take(sids[0], hids[0], key_kind, False)
        else:
            ambiguous.append((key_kind, sorted(sids), sorted(hids)))

    _store(db, table, prior, new, ambiguous, now, summary)
    for how, _kept in new.values():
        summary.links[(table, how)] += 1
    summary.ambiguous[table] += len(ambiguous)


def _store(
    db: sqlite_utils.Database,
    table: str,
    prior: Mapping[tuple[str, str], tuple[str, bool, str | None]],
    new: Mapping[tuple[str, str], tuple[str, bool]],
    ambiguous: Sequence[tuple[str, list[str], list[str]]],
    now: datetime,
    summary: RefreshSummary,
) -> None:
    gone = [pair for pair in prior if pair not in new]
    changed = [
        (pair, how, kept)
        for pair, (how, kept) in new.items()
        if pair not in prior or prior[pair][:2] != (how, kept)
    ]
    db.conn.executemany(
        "DELETE FROM identity_links WHERE object = ? AND salesforce_id = ? AND hubspot_id = ?",
        [(table, s, h) for s, h in gone],
    )
    stamp = encode_datetime(now)
    # A pair's id may still be held by a gone pair's row until that row is deleted (above).
    db.conn.executemany(
        "INSERT INTO identity_links"
        " (object, salesforce_id, hubspot_id, how, kept_through_merge, linked_at)"
        " VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (object, salesforce_id) DO UPDATE SET"
        " hubspot_id = excluded.hubspot_id, how = excluded.how,"
        " kept_through_merge = excluded.kept_through_merge",
        [
            (table, s, h, how, int(kept), prior[(s, h)][2] if (s, h) in prior else stamp)
            for (s, h), how, kept in changed
        ],
    )
    summary.added += sum(1 for (pair, _h, _k) in changed if pair not in prior)
    summary.removed += len(gone)
    summary.ambiguous_before += db.conn.execute(
        "SELECT count(*) FROM identity_ambiguous WHERE object = ?", [table]
    ).fetchone()[0]
    db.conn.execute("DELETE FROM identity_ambiguous WHERE object = ?", [table])
    db.conn.executemany(
        "INSERT INTO identity_ambiguous (object, how, n, salesforce_ids, hubspot_ids, seen_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [
            (table, how, n, dumps(sids), dumps(hids), stamp)
            for n, (how, sids, hids) in enumerate(ambiguous)
        ],
    )


class _Records:
    """One CRM's rows of one table: live ids, merge survivors, 15-character id prefixes."""

    def __init__(self, db: sqlite_utils.Database, table: str, crm: str) -> None:
        self.db, self.table, self.crm = db, table, crm
        self.live: set[str] = set()
        self.merged: dict[str, str] = {}
        self.by_prefix: dict[str, str] = {}
        for rid, merged_into, deleted_at in db.conn.execute(
            f"SELECT id, merged_into, deleted_at FROM {table} WHERE crm = ?", [crm]
        ):
            if merged_into:
                self.merged[rid] = merged_into
            elif deleted_at is None:
                self.live.add(rid)
            if crm == SALESFORCE and len(rid) == 18:
                self.by_prefix[rid[:15]] = rid

    def live_survivor(self, rid: str) -> str | None:
        """The live record `rid` is (or was merged into), else None."""
        if rid not in self.live and rid not in self.merged:
            rid = self.by_prefix.get(rid, rid) if len(rid) == 15 else rid
        for _ in range(_MAX_MERGE_HOPS):
            nxt = self.merged.get(rid)
            if nxt is None:
                break
            rid = nxt
        return rid if rid in self.live else None

    def keys(self, kind: str) -> dict[str, list[str]]:
        """Normalised e-mail or domain -> the live ids holding it."""
        column = "email" if kind == EMAIL else "domain"
        out: dict[str, list[str]] = defaultdict(list)
        for rid, value in self.db.conn.execute(
            f"SELECT id, {column} FROM {self.table} WHERE crm = ? AND deleted_at IS NULL"
            f" AND merged_into IS NULL AND coalesce({column}, '') <> '' ORDER BY id",
            [self.crm],
        ):
            norm = normal_email(value) if kind == EMAIL else site_domain(str(value)) or ""
            if norm:
                out[norm].append(rid)
        return out


def normal_email(value: Any) -> str:
    return str(value).strip().casefold()


def repoint_links(
    db: sqlite_utils.Database, crm: str, obj: ObjectType, loser: str, survivor: str
) -> None:
    """A merge in `crm`: its links move from the loser to the survivor, marked as kept
    through a merge (a survivor already linked keeps its own link). Joins the caller's
    transaction."""
    if obj not in _OBJECTS or crm not in (SALESFORCE, HUBSPOT) or loser == survivor:
        return
    join_transaction(db)
    column = f"{crm}_id"
    db.conn.execute(
        f"UPDATE OR IGNORE identity_links SET {column} = ?, kept_through_merge = 1"
        f" WHERE object = ? AND {column} = ?",
        [survivor, obj.value, loser],
    )
    db.conn.execute(
        f"DELETE FROM identity_links WHERE object = ? AND {column} = ?", [obj.value, loser]
    )


# ---------------------------------------------------------------- reading


def links(db: sqlite_utils.Database, obj: ObjectType | None = None) -> list[Link]:
    rows = db.conn.execute(
        "SELECT object, salesforce_id, hubspot_id, how, kept_through_merge, linked_at"
        " FROM identity_links WHERE (:obj IS NULL OR object = :obj)"
        " ORDER BY object, salesforce_id",
        {"obj": None if obj is None else obj.value},
    )
    return [Link(o, s, h, how, bool(k), decode("linked_at", at)) for o, s, h, how, k, at in rows]


def ambiguous(db: sqlite_utils.Database) -> list[Ambiguous]:
    rows = db.conn.execute(
        "SELECT object, how, salesforce_ids, hubspot_ids FROM identity_ambiguous"
        " ORDER BY object, how, n"
    )
    return [
        Ambiguous(o, how, tuple(loads(s) or ()), tuple(loads(h) or ())) for o, how, s, h in rows
    ]


def counts(db: sqlite_utils.Database) -> dict[str, int]:
    """{"<object>_<how>": links, "<object>_ambiguous": candidates reported}."""
    out: dict[str, int] = {}
    for obj, how, n in db.conn.execute(
        "SELECT object, how, count(*) FROM identity_links GROUP BY object, how ORDER BY 1, 2"
    ):
        out[f"{obj}_{how}"] = int(n)
    for obj, n in db.conn.execute(
        "SELECT object, count(*) FROM identity_ambiguous GROUP BY object ORDER BY 1"
    ):
        out[f"{obj}_ambiguous"] = int(n)
    return out


def linked_ids(db: sqlite_utils.Database, crm: str, obj: ObjectType) -> set[str]:
    """The ids of `crm`'s records of `obj` that are linked to a record of the other CRM."""
    if crm not in (SALESFORCE, HUBSPOT):
        return set()
    return {
        r[0]
        for r in db.conn.execute(
            f"SELECT {crm}_id FROM identity_links WHERE object = ?", [obj.value]
        )
    }


# ---------------------------------------------------------------- evidence for the rules


def _other(crm: str) -> str:
    return HUBSPOT if crm == SALESFORCE else SALESFORCE


def _evidence_sql(crm: str) -> tuple[str, str]:
    this, other = f"l.{crm}_id", f"l.{_other(crm)}_id"
    base = f"""
        FROM identity_links l
        CROSS JOIN contacts c CROSS JOIN contacts o
        WHERE l.object = 'contacts'
          AND c.crm = :crm AND c.id = {this} AND c.deleted_at IS NULL
          AND c.account_id IS NOT NULL
          AND o.crm = :other AND o.id = {other} AND o.deleted_at IS NULL"""
    # Only the pairs where the other CRM adds something (stored datetimes are fixed-width
    # UTC text, so text order is time order).
    contacts = f"""
        SELECT c.account_id, c.id, o.id, o.last_activity_at, o.email_bounced,
               o.bounce_reason, o.bounced_at
        {base}
          AND (o.last_activity_at > coalesce(c.last_activity_at, '')
               OR (coalesce(o.email_bounced, 0) = 1 AND coalesce(c.email_bounced, 0) = 0))
        ORDER BY c.account_id, c.id"""
    # The other CRM's roles become contact-level roles; a role on a lost or deleted
    # opportunity is left out (a contact-level role has no deal to say it was lost).
    roles = f"""
        SELECT c.account_id, c.id, r.id, r.role
        FROM identity_links l
        CROSS JOIN contacts c CROSS JOIN contacts o CROSS JOIN contact_roles r
        LEFT JOIN opportunities p ON p.crm = r.crm AND p.id = r.opportunity_id
        WHERE l.object = 'contacts'
          AND c.crm = :crm AND c.id = {this} AND c.deleted_at IS NULL
          AND c.account_id IS NOT NULL
          AND o.crm = :other AND o.id = {other} AND o.deleted_at IS NULL
          AND r.crm = o.crm AND r.contact_id = o.id AND r.deleted_at IS NULL
          AND coalesce(r.role, '') <> ''
          AND (r.opportunity_id IS NULL
               OR (p.id IS NOT NULL AND p.deleted_at IS NULL
                   AND NOT (coalesce(p.is_closed, 0) = 1 AND coalesce(p.is_won, 0) = 0)))
        ORDER BY c.account_id, c.id, r.id"""
    return contacts, roles


class _ByAccount:
    """Rows ordered by account id in their first column; take one account's rows at a time."""

    def __init__(self, rows: Iterable[Sequence[Any]]) -> None:
        self._rows = iter(rows)
        self._next: Sequence[Any] | None = next(self._rows, None)

    def take(self, account_id: str) -> list[Sequence[Any]]:
        out: list[Sequence[Any]] = []
        while self._next is not None and self._next[0] <= account_id:
            if self._next[0] == account_id:
                out.append(self._next)
            self._next = next(self._rows, None)
        return out


def with_linked_evidence(
    db: sqlite_utils.Database, crm: str, views: Iterable[AccountView]
) -> Iterator[AccountView]:
    """`views` (one CRM's, ordered by account id) with each linked contact seen with the
    evidence of both CRMs: the later last activity, a bounce from either (this CRM's
    reason and date first), and the other CRM's buying roles as contact-level roles."""
    contacts_sql, roles_sql = _evidence_sql(crm)
    params = {"crm": crm, "other": _other(crm)}
    c_cur = db.conn.execute(contacts_sql, params)
    r_cur = db.conn.execute(roles_sql, params)
    contacts, roles = _ByAccount(c_cur), _ByAccount(r_cur)
    try:
        for view in views:
            found = contacts.take(view.id) if view.crm == crm else []
            extra_roles = roles.take(view.id) if view.crm == crm else []
            if not found and not extra_roles:
                yield view
                continue
            yield _merged(view, found, extra_roles)
    finally:
        c_cur.close()
        r_cur.close()


def _merged(
    view: AccountView, found: Sequence[Sequence[Any]], extra_roles: Sequence[Sequence[Any]]
) -> AccountView:
    other_crm = _other(view.crm)
    by_id = {row[1]: row for row in found}
    contacts: list[Contact] = []
    for c in view.contacts:
        row = by_id.get(c.id)
        contacts.append(c if row is None else _with_other(c, row))
    live = {c.id for c in view.contacts}
    added = tuple(
        ContactRole(view.crm, f"{other_crm}:{rid}", None, cid, role)
        for _acc, cid, rid, role in extra_roles
        if cid in live
    )
    return dataclasses.replace(view, contacts=tuple(contacts), roles=view.roles + added)


def _with_other(c: Contact, row: Sequence[Any]) -> Contact:
    _acc, _cid, _oid, last, bounced, reason, bounced_at = row
    other_last = decode("last_activity_at", last)
    other_bounced = bool(decode("email_bounced", bounced))
    changes: dict[str, Any] = {}
    if other_last is not None and (c.last_activity_at is None or other_last > c.last_activity_at):
        changes["last_activity_at"] = other_last
    if other_bounced and not c.email_bounced:
        changes.update(
            email_bounced=True,
            bounce_reason=reason,
            bounced_at=decode("bounced_at", bounced_at),
        )
    return dataclasses.replace(c, **changes) if changes else c
