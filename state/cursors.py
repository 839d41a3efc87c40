"""One cursor per (crm, object): where the next pull starts, and the full-pull generation.

The cursor itself is the connector's business (a JSON object: a timestamp, an
id, a job id). This module stores it beside the data: sync/pull.py calls
`save` in the same transaction as `mirror.apply_page`, so a killed run resumes
from the last committed page with nothing lost and nothing counted twice.

Full pulls and generations. `begin_full` bumps a per-(crm, object) generation
counter and sets mode "full"; every row a full pull upserts or sees unchanged
is stamped with that generation (`synced_at`), and `mirror.finish_full`
soft-deletes the rows that were not. A full pull killed half-way finds mode
still "full": `begin_full` then returns the same generation and keeps the saved
cursor, so the pull resumes where it stopped and rows seen before the kill
still count as seen. `mirror.finish_full` sets the mode back to "incremental".

None of these functions commits: they join the caller's transaction (or open
one that the caller must commit), see state/db.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlite_utils

from crmsync.state.db import (
    decode_datetime,
    dumps,
    encode_datetime,
    join_transaction,
    loads,
    now_utc,
)
from crmsync.state.model import Cursor

Mode = Literal["full", "incremental"]
MODES: tuple[str, ...] = ("full", "incremental")


@dataclass(frozen=True)
class CursorState:
    cursor: dict[str, Any] | None
    mode: Mode | None
    generation: int
    updated_at: datetime | None = None

    @property
    def full_in_progress(self) -> bool:
        return self.mode == "full"


def get(db: sqlite_utils.Database, crm: str, object: str) -> CursorState:
    """The stored state; `CursorState(None, None, 0)` if nothing was ever pulled."""
    row = db.execute(
        "SELECT cursor, mode, generation, updated_at FROM cursors WHERE crm = ? AND object = ?",
        [crm, str(object)],
    ).fetchone()
    if row is None:
        return CursorState(None, None, 0)
    return CursorState(loads(row[0]), row[1], int(row[2] or 0), decode_datetime(row[3]))


def ever_pulled(db: sqlite_utils.Database, crm: str) -> bool:
    """Whether any object of `crm` has finished a full pull (its next pull can be incremental).

    False before the first sync, and while that first sync's full pulls are unfinished: a
    run then pulls every object in full, whatever it was asked for."""
    row = db.execute(
        "SELECT 1 FROM cursors WHERE crm = ? AND mode = 'incremental' LIMIT 1", [crm]
    ).fetchone()
    return row is not None


def save(
    db: sqlite_utils.Database,
    crm: str,
    object: str,
    cursor: Cursor | None,
    *,
    mode: Mode = "incremental",
    saved_at: datetime | None = None,
) -> None:
    """Store `cursor` (keeping the generation); joins the caller's transaction."""
    if mode not in MODES:
        raise ValueError(f"cursor mode must be one of {MODES}, not {mode!r}")
    join_transaction(db)
    db.conn.execute(
        """INSERT INTO cursors (crm, object, cursor, mode, generation, updated_at)
           VALUES (?, ?, ?, ?, 0, ?)
           ON CONFLICT (crm, object) DO UPDATE SET
             cursor = excluded.cursor, mode = excluded.mode, updated_at = excluded.updated_at""",
        [
            crm,
            str(object),
            None if cursor is None else dumps(dict(cursor)),
            mode,
            encode_datetime(saved_at or now_utc()),
        ],
    )


def begin_full(
    db: sqlite_utils.Database, crm: str, object: str, *, saved_at: datetime | None = None
) -> int:
    """Start (or resume) a full pull of `object`; return its generation.

    A new full pull gets generation + 1 and an empty cursor; if the previous
    full pull never finished, its generation and cursor are kept (resume).
    """
    state = get(db, crm, object)
    if state.mode == "full" and state.generation > 0:
        return state.generation
    generation = state.generation + 1
    join_transaction(db)
    db.conn.execute(
        """INSERT INTO cursors (crm, object, cursor, mode, generation, updated_at)
           VALUES (?, ?, NULL, 'full', ?, ?)
           ON CONFLICT (crm, object) DO UPDATE SET
             cursor = NULL, mode = 'full', generation = excluded.generation,
             updated_at = excluded.updated_at""",
        [crm, str(object), generation, encode_datetime(saved_at or now_utc())],
    )
    return generation


def end_full(db: sqlite_utils.Database, crm: str, object: str, generation: int) -> None:
    """Mark the full pull of `generation` finished (mode back to incremental)."""
    join_transaction(db)
    db.conn.execute(
        "UPDATE cursors SET mode = 'incremental' WHERE crm = ? AND object = ? AND generation = ?",
        [crm, str(object), generation],
    )


def clear(db: sqlite_utils.Database, crm: str, object: str | None = None) -> None:
    """Forget the cursor (all of `crm`'s when `object` is None): the next pull starts over.

    The generation counter survives, so a later full pull never reuses a number.
    """
    join_transaction(db)
    if object is None:
        db.conn.execute("UPDATE cursors SET cursor = NULL, mode = NULL WHERE crm = ?", [crm])
    else:
        db.conn.execute(
            "UPDATE cursors SET cursor = NULL, mode = NULL WHERE crm = ? AND object = ?",
            [crm, str(object)],
        )


def all_states(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every stored cursor, for `crmsync status` (ordered by crm, object)."""
    rows = db.execute(
        "SELECT crm, object, cursor, mode, generation, updated_at FROM cursors ORDER BY crm, object"
    ).fetchall()
    return [
        {
            "crm": crm,
            "object": obj,
            "cursor": loads(cursor),
            "mode": mode,
            "generation": generation,
            "updated_at": decode_datetime(updated_at),
        }
        for crm, obj, cursor, mode, generation, updated_at in rows
    ]
