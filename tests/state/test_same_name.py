"""Same-name matches (the `elsewhere` stream's "same_name" rows) on a generated mirror.

Names repeat a lot, in mixed case, across accounts that share, lack or change
domains; some contacts and accounts are deleted, some contacts moved. The
stream must hold exactly what the rule says (state/views.py): for each contact
holding a role or having left an account, the first MAX_SAME_NAME other live
contacts of the same first and last name (case-insensitive) at a live account of
another domain, by (account id, contact id). Two oracles: that rule spelled out
in Python over the mirror's rows, and the query views.py used before (kept
below), where SQLite runs it correctly.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import pytest

from crmsync.state import views
from tests.state.conftest import load
from tests.state.records import account, contact, role

FIRST = ("Ada", "ADA", "ada", "Grace", "grace", "Alan")
LAST = ("Lovelace", "LOVELACE", "Hopper", "hopper", "Turing", "")
DOMAINS = ("acme.test", "ACME.test", "beta.test", "gamma.test", "delta.test", None, "")


def _generate(db: Any, seed: int) -> None:
    rnd = random.Random(seed)
    accounts = [f"A{i:02}" for i in range(24)]
    load(db, *[account(a, name=f"Org {a}", domain=rnd.choice(DOMAINS)) for a in accounts])
    contacts = {
        f"C{i:03}": rnd.choice([*accounts, None] if i % 17 == 0 else accounts) for i in range(240)
    }
    names = {c: (rnd.choice(FIRST), rnd.choice(LAST)) for c in contacts}
    load(db, *[contact(c, a, *names[c]) for c, a in contacts.items()])
    holders = rnd.sample(sorted(contacts), 90)
    load(db, *[role(f"R{c}", c, None) for c in holders])
    # later: some contacts move (history), some are deleted, some accounts are deleted
    moved = {c: rnd.choice(accounts) for c in rnd.sample(sorted(contacts), 30)}
    load(db, *[contact(c, a, *names[c], minute=1) for c, a in moved.items()])
    gone = rnd.sample(sorted(contacts), 20)
    load(db, *[contact(c, contacts[c], *names[c], deleted=True, minute=2) for c in gone])
    load(
        db, *[account(a, name=f"Org {a}", deleted=True, minute=2) for a in rnd.sample(accounts, 3)]
    )


def _same_name_rows(db: Any) -> list[tuple[str, ...]]:
    return [
        (v.crm, v.id, e.contact_id, e.other_contact_id, e.other_account_id, e.other_account_name)
        for v in views.iter_account_views(db, "salesforce")
        for e in v.elsewhere
        if e.how == "same_name"
    ]


def _by_rule(db: Any) -> list[tuple[str, ...]]:
    """The rule in Python, over plain reads of the mirror."""
    q = db.conn.execute
    acc = {i: (n, (d or "").lower(), gone) for i, n, d, gone in q(
        "SELECT id, name, domain, deleted_at FROM accounts WHERE crm = 'salesforce'")}  # fmt: skip
    con = {i: (a, f, la, gone) for i, a, f, la, gone in q(
        "SELECT id, account_id, first_name, last_name, deleted_at FROM contacts"
        " WHERE crm = 'salesforce'")}  # fmt: skip
    live = {c: v for c, v in con.items() if v[3] is None and v[0] is not None}
    holders = {(live[c][0], c) for (c,) in q(
        "SELECT contact_id FROM contact_roles WHERE deleted_at IS NULL") if c in live}  # fmt: skip
    holders |= {(old, c) for old, c in q(
        "SELECT old, contact_id FROM contact_history WHERE field = 'account_id'"
        " AND old IS NOT NULL") if c in live and live[c][0] != old}  # fmt: skip
    by_name: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for c, (a, first, last, _) in sorted(live.items(), key=lambda kv: (kv[1][0], kv[0])):
        if a in acc and acc[a][2] is None and first and last:
            by_name[(first.lower(), last.lower())].append((a, c))
    out = []
    for a, c in sorted(holders):
        first, last = con[c][1], con[c][2]
        if a not in acc or acc[a][2] is not None or not first or not last:
            continue  # no view of a deleted account
        others = [
            (oa, oc)
            for oa, oc in by_name[(first.lower(), last.lower())]
            if oc != c and acc[oa][1] != acc[a][1]
        ]
        out += [
            ("salesforce", a, c, oc, oa, acc[oa][0]) for oa, oc in others[: views.MAX_SAME_NAME]
        ]
    return out


# The query before issue #14 (its holders and former contacts as in views.py): each
# name's live contacts ranked once, a holder reading its name's first ranks.
_BEFORE = """
WITH {former},
holders(crm, acc, cid) AS (
    SELECT c.crm, c.account_id, c.id
    FROM contact_roles r CROSS JOIN contacts c
    WHERE r.deleted_at IS NULL AND c.crm = r.crm AND c.id = r.contact_id
      AND c.deleted_at IS NULL AND c.account_id IS NOT NULL AND c.crm = :crm
    UNION
    SELECT crm, acc, cid FROM former
),
holder_names(crm, acc, cid, ln, fn, dom) AS (
    SELECT x.crm, x.acc, x.cid, lower(c.last_name), lower(c.first_name),
           coalesce(lower(a.domain), '')
    FROM holders x CROSS JOIN contacts c CROSS JOIN accounts a
    WHERE c.crm = x.crm AND c.id = x.cid
      AND coalesce(c.first_name, '') <> '' AND coalesce(c.last_name, '') <> ''
      AND a.crm = x.crm AND a.id = x.acc
),
named(crm, ln, fn, ocid, oacc, oname, dom) AS (
    SELECT y.crm, lower(y.last_name), lower(y.first_name), y.id, b.id, b.name,
           coalesce(lower(b.domain), '')
    FROM (SELECT DISTINCT crm, ln, fn FROM holder_names) n
         CROSS JOIN contacts y CROSS JOIN accounts b
    WHERE y.crm = n.crm AND lower(y.last_name) = n.ln AND lower(y.first_name) = n.fn
      AND y.deleted_at IS NULL
      AND b.crm = y.crm AND b.id = y.account_id AND b.deleted_at IS NULL
),
ranked AS (
    SELECT *, row_number() OVER (PARTITION BY crm, ln, fn ORDER BY oacc, ocid) AS rk,
           count(*) OVER (PARTITION BY crm, ln, fn, dom) AS per_dom
    FROM named
),
reach(crm, ln, fn, k) AS (
    SELECT crm, ln, fn, max(per_dom) + 1 + {most} FROM ranked GROUP BY crm, ln, fn
),
found(vcrm, vacc, cid, ocid, oacc, oname) AS (
    SELECT h.crm, h.acc, h.cid, r.ocid, r.oacc, r.oname
    FROM holder_names h CROSS JOIN reach k CROSS JOIN ranked r
    WHERE k.crm = h.crm AND k.ln = h.ln AND k.fn = h.fn
      AND r.crm = h.crm AND r.ln = h.ln AND r.fn = h.fn AND r.rk <= k.k
      AND r.ocid <> h.cid AND r.dom <> h.dom
)
SELECT vcrm, vacc, cid, ocid, oacc, oname FROM (
    SELECT *, row_number() OVER (PARTITION BY vcrm, vacc, cid ORDER BY oacc, ocid) AS n
    FROM found
) WHERE n <= {most}
ORDER BY vcrm, vacc, cid, oacc, ocid"""


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_same_name_rows_follow_the_rule_in_order(db, seed: int) -> None:
    _generate(db, seed)
    got = _same_name_rows(db)
    assert len(got) > 40  # names repeat: many holders have matches
    assert got == _by_rule(db)


def test_same_name_rows_equal_the_query_before(db) -> None:
    _generate(db, 1)
    # the query before, without its index hints: on a small mirror SQLite runs it plainly
    before = _BEFORE.format(
        former=views._FORMER_CTE.format(fh="AND h.crm = :crm"), most=views.MAX_SAME_NAME
    )
    live = {a for (a,) in db.conn.execute("SELECT id FROM accounts WHERE deleted_at IS NULL")}
    rows = [tuple(r) for r in db.conn.execute(before, {"crm": "salesforce"})]
    assert [r for r in rows if r[1] in live] == _same_name_rows(db)  # views of live accounts
