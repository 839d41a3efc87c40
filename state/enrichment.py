"""The outside people-data cache: what a provider was asked, when, and who it named.

sync/enrichment.py asks a provider (off by default) about an account's domain and a
role; the answer is stored here so that the next run does not ask again until
`refresh_days` have passed, and so the rules see the people (state/views.py reads
`enrichment_people` into `AccountView.outside_people`). A lookup is remembered
also when the provider found nobody. Values are outside data: cleaned like CRM
text when stored, quoted at bounded length when shown (rules/explain.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import sqlite_utils

from crmsync.state.db import decode_datetime, dumps, encode_datetime, transaction
from crmsync.state.model import OutsidePerson
from crmsync.state.text import clean_stored

MAX_PER_LOOKUP = 10  # people kept per (account, role, provider)
_STORED_MAX = 500  # characters kept of one outside value


def fetched_at(
    db: sqlite_utils.Database, crm: str, provider: str
) -> dict[tuple[str, str], datetime]:
    """{(account id, role casefolded): when `provider` was last asked} for one CRM."""
    rows = db.conn.execute(
        "SELECT account_id, role, fetched_at FROM enrichment_lookups"
        " WHERE crm = ? AND provider = ?",
        [crm, provider],
    )
    out: dict[tuple[str, str], datetime] = {}
    for account_id, role, at in rows:
        when = decode_datetime(at)
        if when is not None:
            out[(account_id, role.casefold())] = when
    return out


def store(
    db: sqlite_utils.Database,
    crm: str,
    account_id: str,
    role: str,
    provider: str,
    domain: str | None,
    people: Sequence[OutsidePerson],
    at: datetime,
) -> int:
    """Replace the cached answer of one lookup; return how many people were kept."""
    kept = [p for p in people if _text(p.name)][:MAX_PER_LOOKUP]
    with transaction(db):
        db.conn.execute(
            "DELETE FROM enrichment_people"
            " WHERE crm = ? AND account_id = ? AND lower(role) = lower(?) AND provider = ?",
            [crm, account_id, role, provider],
        )
        db.conn.execute(
            "DELETE FROM enrichment_lookups"
            " WHERE crm = ? AND account_id = ? AND lower(role) = lower(?) AND provider = ?",
            [crm, account_id, role, provider],
        )
        db.conn.execute(
            "INSERT INTO enrichment_lookups"
            " (crm, account_id, role, provider, domain, fetched_at, found)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [crm, account_id, role, provider, domain, encode_datetime(at), len(kept)],
        )
        db.conn.executemany(
            "INSERT INTO enrichment_people"
            " (crm, account_id, role, provider, n, name, title, email, source)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                [
                    crm, account_id, role, provider, n, _text(p.name),
                    _text(p.title) or None, _text(p.email) or None, _text(p.source) or provider,
                ]
                for n, p in enumerate(kept)
            ],
        )  # fmt: skip
    return len(kept)


def set_wants(
    db: sqlite_utils.Database,
    crm: str,
    wants: Iterable[tuple[str, str, str]],
    accounts: Iterable[str] | None = None,
) -> None:
    """Keep `wants` ((account id, domain, role), in the order to ask) as what the rules want
    of the accounts in `accounts` (None: of every account of `crm`)."""
    rows = [(crm, account, n, domain, role) for n, (account, domain, role) in enumerate(wants)]
    with transaction(db):
        if accounts is None:
            db.conn.execute("DELETE FROM enrichment_wants WHERE crm = ?", [crm])
        else:
            db.conn.execute(
                "DELETE FROM enrichment_wants WHERE crm = ?"
                " AND account_id IN (SELECT value FROM json_each(?))",
                [crm, dumps(sorted(set(accounts)))],
            )
        db.conn.executemany("INSERT INTO enrichment_wants VALUES (?, ?, ?, ?, ?)", rows)


def wants(db: sqlite_utils.Database, crm: str) -> list[tuple[str, str, str]]:
    """(account id, domain, role) of every lookup the rules want, by account id, in order."""
    return [
        (a, d, r)
        for a, d, r in db.conn.execute(
            "SELECT account_id, domain, role FROM enrichment_wants WHERE crm = ?"
            " ORDER BY account_id, n",
            [crm],
        )
    ]


def prune(
    db: sqlite_utils.Database, crm: str, keep_provider: str, before: datetime | None = None
) -> int:
    """Forget answers of any provider but `keep_provider` ("": forget all), and those asked
    before `before` (not asked again: nobody needs them now). Returns the lookups forgotten.
    Outside people are personal data: the mirror keeps them only while they are used."""

    def stale(p: str) -> str:
        old = f" OR {p}fetched_at < :before" if before is not None else ""
        return f"({p}provider <> :keep{old})"

    params = {"crm": crm, "keep": keep_provider, "before": encode_datetime(before)}
    with transaction(db):
        gone = db.conn.execute(
            f"SELECT count(*) FROM enrichment_lookups WHERE crm = :crm AND {stale('')}", params
        ).fetchone()[0]
        db.conn.execute(
            "DELETE FROM enrichment_people AS e WHERE e.crm = :crm AND (e.provider <> :keep"
            " OR EXISTS (SELECT 1 FROM enrichment_lookups l WHERE l.crm = e.crm"
            " AND l.account_id = e.account_id AND lower(l.role) = lower(e.role)"
            f" AND l.provider = e.provider AND {stale('l.')}))",
            params,
        )
        db.conn.execute(
            f"DELETE FROM enrichment_lookups WHERE crm = :crm AND {stale('')}", params
        )
    return int(gone)


def people(
    db: sqlite_utils.Database, crm: str, account_ids: Iterable[str] | None = None
) -> list[tuple[str, OutsidePerson]]:
    """(account id, person) of the cache, ordered by account, role, provider and rank."""
    sql = (
        "SELECT account_id, role, name, title, email, source FROM enrichment_people"
        " WHERE crm = ?"
    )
    params: list[object] = [crm]
    if account_ids is not None:
        sql += " AND account_id IN (SELECT value FROM json_each(?))"
        params.append(dumps(sorted(set(account_ids))))
    sql += " ORDER BY account_id, role, provider, n"
    return [
        (acc, OutsidePerson(role, name, title, email, source or ""))
        for acc, role, name, title, email, source in db.conn.execute(sql, params)
    ]


def _text(value: str | None) -> str:
    """One line, NULs and lone surrogates gone, at most _STORED_MAX characters."""
    if not value:
        return ""
    cleaned, _ = clean_stored(str(value))
    return " ".join(cleaned.split())[:_STORED_MAX]
