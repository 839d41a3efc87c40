"""Transactions on the mirror: the leaf both state/db.py and state/migrations.py use.

sqlite-utils 4 commits every statement run outside a transaction, and `with
db.conn:` does not open one by itself. So the mirror's write functions call
`join_transaction(db)`, which opens `BEGIN IMMEDIATE` when no transaction is
open and never commits; `transaction(db)` commits a block or rolls it back;
`rolled_back(db)` runs a preview that stores nothing. This module imports only
sqlite-utils, so the migrations can use it without importing `state.db` back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlite_utils


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
