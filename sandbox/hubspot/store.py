"""In-memory record store of the HubSpot emulator: objects, timestamps, ids, merges.

Why this shape: the emulator must hold 1,000,000 contacts and answer a list
page of 100 or a search page of 200 in well under 50 ms. Each object type is a
`Table`: records in a dict keyed by int id, the live ids in an id-sorted
`array('q')` (new ids are always the largest, so creates append), and a
modified-time index (two parallel arrays sorted by (modified ms, id)) that
writes append to because every write gets a strictly larger timestamp. Stale
index entries are skipped lazily and compacted when they pile up.

Timestamps: `createdate`, `hs_lastmodifieddate` (contacts also
`lastmodifieddate`, tasks also `hs_createdate`) and `hs_object_id` are kept on
every write. Write times come from an injectable clock and are strictly
increasing per emulator (`Store.tick`). Archived records move out of the live
set and keep their last modified date, as in HubSpot.
"""

from __future__ import annotations

import threading
import time
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

OBJECT_TYPES = ("companies", "contacts", "deals", "tasks")
TYPE_IDS = {"0-1": "contacts", "0-2": "companies", "0-3": "deals", "0-27": "tasks"}
TYPE_ID_OF = {v: k for k, v in TYPE_IDS.items()}
ALIASES = {
    "contact": "contacts",
    "company": "companies",
    "deal": "deals",
    "task": "tasks",
    **TYPE_IDS,
}
SINGULAR = {"contacts": "contact", "companies": "company", "deals": "deal", "tasks": "task"}


def object_type(name: str) -> str | None:
    """Canonical plural type for a path segment ("contacts", "0-1", "contact"), or None."""
    n = name.lower()
    if n in OBJECT_TYPES:
        return n
    return ALIASES.get(n)


def modified_property(obj: str) -> str:
    """The property HubSpot's own search docs use as the modified date of `obj`."""
    return "lastmodifieddate" if obj == "contacts" else "hs_lastmodifieddate"


# ------------------------------------------------------------------ time helpers

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso(ms: int) -> str:
    """Epoch milliseconds as HubSpot's ISO form, e.g. 2026-05-01T12:34:56.789Z."""
    secs, milli = divmod(int(ms), 1000)
    t = time.gmtime(secs)
    return f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}T{t[3]:02d}:{t[4]:02d}:{t[5]:02d}.{milli:03d}Z"


def to_ms(value: Any) -> int | None:
    """Epoch ms from epoch-ms digits, an ISO datetime or a date; None if unparseable."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return int(value)
    s = str(value).strip()
    if not s:
        return None
    if s.lstrip("-").isdigit():
        return int(s)
    try:
        if len(s) == 10:
            d = date.fromisoformat(s)
            return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * 1000
        t = s.replace("Z", "+00:00")
        if len(t) > 5 and t[-5] in "+-" and t[-4:].isdigit() and ":" not in t[-5:]:
            t = t[:-2] + ":" + t[-2:]  # "+0000" -> "+00:00"
        dt = datetime.fromisoformat(t)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000


# ------------------------------------------------------------------ records


class Rec:
    """One CRM object: id, string properties, created/modified/archived epoch ms, history."""

    __slots__ = ("id", "props", "created", "modified", "archived_at", "history")

    def __init__(self, id: int, props: dict[str, Any], created: int, modified: int) -> None:
        self.id = id
        self.props = props
        self.created = created
        self.modified = modified
        self.archived_at: int | None = None
        # property -> entries, newest first (history.py); None until the first write
        self.history: dict[str, list[dict[str, Any]]] | None = None


class Table:
    """The records of one object type with the indexes list and search need."""

    def __init__(self, obj: str) -> None:
        self.obj = obj
        self.mod_prop = modified_property(obj)
        self.live: dict[int, Rec] = {}
        self.archived: dict[int, Rec] = {}
        self.ids = array("q")  # live ids, ascending
        self.mod_ms = array("q")  # modified index: (ms, id) ascending
        self.mod_ids = array("q")
        self.dead: set[int] = set()  # positions of retired modified-index entries
        self._archived_sorted: list[int] | None = None

    def __len__(self) -> int:
        return len(self.live)

    # -- indexes
    def rebuild(self) -> None:
        self.ids = array("q", sorted(self.live))
        pairs = sorted((r.modified, r.id) for r in self.live.values())
        self.mod_ms = array("q", (p[0] for p in pairs))
        self.mod_ids = array("q", (p[1] for p in pairs))
        self.dead = set()
        self._archived_sorted = None

    def _index_add(self, rec: Rec) -> None:
        ms = self.mod_ms
        if ms and (ms[-1], self.mod_ids[-1]) > (rec.modified, rec.id):
            self.rebuild()  # out of order (never for stamped writes): re-sort everything
        else:
            ms.append(rec.modified)
            self.mod_ids.append(rec.id)

    def _kill(self, ms: int, rec_id: int) -> None:
        """Mark the index entry (ms, rec_id) dead; compact when a quarter is dead."""
        i = bisect_left(self.mod_ms, ms)
        n = len(self.mod_ms)
        while i < n and self.mod_ms[i] == ms:
            if self.mod_ids[i] == rec_id and i not in self.dead:
                self.dead.add(i)
                break
            i += 1
        if len(self.dead) > 1000 and len(self.dead) * 4 > n:
            self.compact()

    def compact(self) -> None:
        dead = self.dead
        keep = [k for k in range(len(self.mod_ms)) if k not in dead]
        self.mod_ms = array("q", (self.mod_ms[k] for k in keep))
        self.mod_ids = array("q", (self.mod_ids[k] for k in keep))
        self.dead = set()

    def add(self, rec: Rec) -> None:
        self.live[rec.id] = rec
        if not self.ids or self.ids[-1] < rec.id:
            self.ids.append(rec.id)
        else:
            i = bisect_left(self.ids, rec.id)
            if i >= len(self.ids) or self.ids[i] != rec.id:
                self.ids.insert(i, rec.id)
        self._index_add(rec)

    def touched(self, rec: Rec, old_ms: int) -> None:
        """`rec.modified` moved on from `old_ms`: retire the old index entry, add the new."""
        self._kill(old_ms, rec.id)
        self._index_add(rec)

    def remove(self, rec_id: int) -> Rec | None:
        rec = self.live.pop(rec_id, None)
        if rec is None:
            return None
        i = bisect_left(self.ids, rec_id)
        if i < len(self.ids) and self.ids[i] == rec_id:
            del self.ids[i]
        self._kill(rec.modified, rec_id)
        return rec

    def archive(self, rec: Rec, at: int) -> None:
        self.remove(rec.id)
        rec.archived_at = at
        self.archived[rec.id] = rec
        self._archived_sorted = None

    def forget_archived(self, rec_id: int) -> None:
        if self.archived.pop(rec_id, None) is not None:
            self._archived_sorted = None

    def archived_before(self, cutoff_ms: int) -> list[Rec]:
        """Archived records whose archive time is before `cutoff_ms`."""
        if not self.archived:
            return []
        return [r for r in self.archived.values() if (r.archived_at or 0) < cutoff_ms]

    # -- reads
    def page_ids(self, after: int, limit: int, archived: bool = False) -> tuple[list[int], int | None]:
        """Ids > `after`-1 (i.e. >= after) in id order, and the next `after` or None."""
        if archived:
            if self._archived_sorted is None:
                self._archived_sorted = sorted(self.archived)
            seq: Any = self._archived_sorted
        else:
            seq = self.ids
        i = bisect_left(seq, after)
        out = list(seq[i : i + limit])
        nxt = seq[i + limit] if i + limit < len(seq) else None
        return out, nxt

    def mod_range_ids(self, lo: int | None, hi: int | None) -> list[int]:
        """Live ids with lo <= modified <= hi in (modified, id) order, at C speed."""
        ms = self.mod_ms
        s = 0 if lo is None else bisect_left(ms, lo)
        e = len(ms) if hi is None else bisect_right(ms, hi)
        ids = self.mod_ids[s:e].tolist()
        dead = sorted(p - s for p in self.dead if s <= p < e)
        if len(dead) < 64:
            for p in reversed(dead):
                del ids[p]
            return ids
        drop = set(dead)
        return [x for k, x in enumerate(ids) if k not in drop]

    def id_range_ids(self, lo: int | None, hi: int | None) -> list[int]:
        ids = self.ids
        s = 0 if lo is None else bisect_left(ids, lo)
        e = len(ids) if hi is None else bisect_right(ids, hi)
        return ids[s:e].tolist()

    def by_modified(self, lo: int | None, hi: int | None) -> Iterator[Rec]:
        """Live records with lo <= modified <= hi in (modified, id) order."""
        ms = self.mod_ms
        start = 0 if lo is None else bisect_left(ms, lo)
        end = len(ms) if hi is None else bisect_right(ms, hi)
        live = self.live
        ids = self.mod_ids
        for k in range(start, end):
            rec = live.get(ids[k])
            if rec is not None and rec.modified == ms[k]:
                yield rec

    def by_id(self, lo: int | None, hi: int | None) -> Iterator[Rec]:
        ids = self.ids
        start = 0 if lo is None else bisect_left(ids, lo)
        end = len(ids) if hi is None else bisect_right(ids, hi)
        live = self.live
        for k in range(start, end):
            yield live[ids[k]]


class Store:
    """All object tables, owners, the id counter, the write clock and merge map."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self.clock = clock or time.time
        self.lock = threading.RLock()
        self.tables = {o: Table(o) for o in OBJECT_TYPES}
        self.owners: dict[str, dict[str, Any]] = {}
        self.merged: dict[str, dict[int, int]] = {o: {} for o in OBJECT_TYPES}
        self.emails: dict[str, int] = {}  # casefolded contact email -> id
        self.next_id = 1
        self.last_ms = 0
        self.version = 0  # bumps on every write; search caches key on it

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def tick(self) -> int:
        """A write timestamp strictly greater than every earlier one."""
        ms = max(self.now_ms(), self.last_ms + 1)
        self.last_ms = ms
        self.version += 1
        return ms

    def new_id(self) -> int:
        i = self.next_id
        self.next_id += 1
        return i

    def resolve(self, obj: str, rec_id: int) -> int:
        """Follow merges: an old id answers with the record it was merged into."""
        seen = 0
        merged = self.merged[obj]
        while rec_id in merged and seen < 64:
            rec_id = merged[rec_id]
            seen += 1
        return rec_id

    def get(self, obj: str, rec_id: int, archived: bool = False) -> Rec | None:
        t = self.tables[obj]
        if archived:
            return t.archived.get(rec_id)
        return t.live.get(self.resolve(obj, rec_id))

    def stamp(self, obj: str, rec: Rec, ms: int, created: bool = False) -> None:
        """Set the system properties HubSpot maintains on every write."""
        p = rec.props
        rec.modified = ms
        stamp = iso(ms)
        p["hs_lastmodifieddate"] = stamp
        if obj == "contacts":
            p["lastmodifieddate"] = stamp
        if created:
            p["createdate"] = iso(rec.created)
            if obj == "tasks":
                p["hs_createdate"] = iso(rec.created)
        p["hs_object_id"] = str(rec.id)

    def index_email(self, rec: Rec, old: str | None = None) -> None:
        if old:
            k = old.strip().casefold()
            if self.emails.get(k) == rec.id:
                del self.emails[k]
        email = rec.props.get("email")
        if email:
            key = str(email).strip().casefold()
            self.emails.setdefault(email if key == email else key, rec.id)  # reuse the string

    def find_email(self, email: str) -> int | None:
        return self.emails.get(str(email).strip().casefold())
