"""Associations of the HubSpot emulator: v4 type ids, labels and the edge store.

Type ids are HubSpot's HUBSPOT_DEFINED ones (api-facts §22): contact->company
primary 1 / unlabeled 279, deal->contact 3, deal->company primary 5 / 341,
task->contact 204, task->company 192, task->deal 216, and their inverses.
USER_DEFINED labels ("Champion", ...) get account-specific ids on creation,
one for each direction. As in HubSpot, every associated pair carries the
unlabeled default type; "Primary" and user labels come on top of it, and a
record has at most one primary company.

Edges live once per unordered pair of types, in the pair's canonical direction
(`PAIRS`): `fwd[a][b]` and `rev[b][a]` both point at the same tuple of forward
type ids; reading from the other side maps each id to its inverse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PAIRS = [
    ("contacts", "companies"),
    ("deals", "companies"),
    ("deals", "contacts"),
    ("tasks", "contacts"),
    ("tasks", "companies"),
    ("tasks", "deals"),
]

# (from, to, forward type id, label, inverse type id)
_BUILTIN = [
    ("contacts", "companies", 1, "Primary", 2),
    ("contacts", "companies", 279, None, 280),
    ("deals", "companies", 5, "Primary", 6),
    ("deals", "companies", 341, None, 342),
    ("deals", "contacts", 3, None, 4),
    ("tasks", "contacts", 204, None, 203),
    ("tasks", "companies", 192, None, 191),
    ("tasks", "deals", 216, None, 215),
]
PRIMARY_UNIQUE = {1, 5}  # forward primary types: one target per source record
FIRST_USER_TYPE_ID = 1001


@dataclass(frozen=True)
class AssocType:
    type_id: int
    from_obj: str
    to_obj: str
    category: str
    label: str | None
    inverse: int
    name: str | None = None

    def spec(self) -> dict[str, Any]:
        return {"category": self.category, "typeId": self.type_id, "label": self.label}

    def v3_name(self, has_primary: bool) -> str:
        """The `type` string of v3 inline associations (contact_to_company, ...)."""
        base = f"{_singular(self.from_obj)}_to_{_singular(self.to_obj)}"
        if self.category == "USER_DEFINED":
            return (self.name or self.label or base).lower().replace(" ", "_")
        if self.label is None and has_primary:
            return base + "_unlabeled"
        return base


def _singular(obj: str) -> str:
    return {"companies": "company"}.get(obj, obj[:-1])


class Associations:
    """Type registry plus edges between records."""

    def __init__(self) -> None:
        self.types: dict[int, AssocType] = {}
        self.defaults: dict[tuple[str, str], int] = {}
        self.primaries: dict[tuple[str, str], int] = {}
        self.next_type_id = FIRST_USER_TYPE_ID
        self.limits: dict[int, int] = {}  # type id -> userEnforcedMaxToObjectIds
        self.fwd: dict[tuple[str, str], dict[int, dict[int, tuple[int, ...]]]] = {p: {} for p in PAIRS}
        self.rev: dict[tuple[str, str], dict[int, dict[int, tuple[int, ...]]]] = {p: {} for p in PAIRS}
        self._tuples: dict[tuple[int, ...], tuple[int, ...]] = {}
        for a, b, t, label, inv in _BUILTIN:
            self._register(AssocType(t, a, b, "HUBSPOT_DEFINED", label, inv))
            self._register(AssocType(inv, b, a, "HUBSPOT_DEFINED", label, t))

    def _register(self, at: AssocType) -> None:
        self.types[at.type_id] = at
        key = (at.from_obj, at.to_obj)
        if at.category == "HUBSPOT_DEFINED":
            if at.label is None:
                self.defaults[key] = at.type_id
            else:
                self.primaries[key] = at.type_id

    # ------------------------------------------------------------ labels
    def labels(self, a: str, b: str) -> list[AssocType]:
        return sorted((t for t in self.types.values() if t.from_obj == a and t.to_obj == b),
                      key=lambda t: (t.category != "HUBSPOT_DEFINED", t.type_id))

    def find_label(self, a: str, b: str, label: str) -> AssocType | None:
        low = label.strip().lower()
        for t in self.types.values():
            if t.from_obj == a and t.to_obj == b and (
                (t.label or "").lower() == low or (t.name or "").lower() == low
            ):
                return t
        return None

    def create_label(self, a: str, b: str, label: str, name: str | None = None,
                     inverse_label: str | None = None) -> tuple[AssocType, AssocType]:
        """A USER_DEFINED label: a new type id for a->b and one for b->a."""
        t1, t2 = self.next_type_id, self.next_type_id + 1
        self.next_type_id += 2
        fwd = AssocType(t1, a, b, "USER_DEFINED", label, t2, name or _name(label))
        inv = AssocType(t2, b, a, "USER_DEFINED", inverse_label or label, t1,
                        _name(inverse_label) if inverse_label else name or _name(label))
        self._register(fwd)
        self._register(inv)
        return fwd, inv

    def type_for(self, a: str, b: str, label: str | None) -> list[int]:
        """Type ids (a->b direction) a dataset label means: null, "primary" or a user label."""
        default = self.defaults.get((a, b))
        if default is None:
            raise KeyError(f"no association between {a} and {b}")
        if label is None or label == "":
            return [default]
        if label.lower() == "primary":
            prim = self.primaries.get((a, b))
            return [default] if prim is None else [prim, default]
        found = self.find_label(a, b, label)
        if found is None:
            found, _ = self.create_label(a, b, label)
        return [found.type_id, default]

    # ------------------------------------------------------------ edges
    def _canon(self, a: str, b: str) -> tuple[tuple[str, str], bool]:
        if (a, b) in self.fwd:
            return (a, b), True
        if (b, a) in self.fwd:
            return (b, a), False
        raise KeyError(f"no association between {a} and {b}")

    def _intern(self, types: tuple[int, ...]) -> tuple[int, ...]:
        return self._tuples.setdefault(types, types)

    def add(self, a: str, a_id: int, b: str, b_id: int, type_ids: list[int]) -> list[int]:
        """Add types (given in a->b direction) between two records; returns what was added."""
        pair, forward = self._canon(a, b)
        fids = [t if forward else self.types[t].inverse for t in type_ids]
        x, y = (a_id, b_id) if forward else (b_id, a_id)
        default = self.defaults[pair]
        fids = sorted(set(fids) | {default})
        for t in fids:
            if t in PRIMARY_UNIQUE:
                for other, types in list(self.fwd[pair].get(x, {}).items()):
                    if other != y and t in types:
                        self._set(pair, x, other, tuple(v for v in types if v != t))
        cur = self.fwd[pair].get(x, {}).get(y, ())
        new = tuple(sorted(set(cur) | set(fids)))
        self._set(pair, x, y, new)
        return [t if forward else self.types[t].inverse for t in new if t not in cur]

    def _set(self, pair: tuple[str, str], x: int, y: int, types: tuple[int, ...]) -> None:
        types = self._intern(types)
        self.fwd[pair].setdefault(x, {})[y] = types
        self.rev[pair].setdefault(y, {})[x] = types

    def remove(self, a: str, a_id: int, b: str, b_id: int, type_ids: list[int] | None = None) -> None:
        """Remove all types (or only `type_ids`, a->b direction) between two records."""
        pair, forward = self._canon(a, b)
        x, y = (a_id, b_id) if forward else (b_id, a_id)
        cur = self.fwd[pair].get(x, {}).get(y)
        if cur is None:
            return
        if type_ids is not None:
            drop = {t if forward else self.types[t].inverse for t in type_ids}
            rest = tuple(t for t in cur if t not in drop)
            if rest and self.defaults[pair] in rest:
                self._set(pair, x, y, rest)
                return
        self.fwd[pair][x].pop(y, None)
        if not self.fwd[pair][x]:
            del self.fwd[pair][x]
        self.rev[pair][y].pop(x, None)
        if not self.rev[pair][y]:
            del self.rev[pair][y]

    def targets(self, a: str, a_id: int, b: str) -> list[tuple[int, tuple[int, ...]]]:
        """(target id, type ids in a->b direction) for one record, sorted by target id."""
        try:
            pair, forward = self._canon(a, b)
        except KeyError:
            return []
        if forward:
            m = self.fwd[pair].get(a_id)
            return sorted(m.items()) if m else []
        m = self.rev[pair].get(a_id)
        if not m:
            return []
        inv = self.types
        return [(k, tuple(sorted(inv[t].inverse for t in v))) for k, v in sorted(m.items())]

    def count(self, a: str, a_id: int, b: str) -> int:
        pair, forward = self._canon(a, b)
        m = (self.fwd if forward else self.rev)[pair].get(a_id)
        return len(m) if m else 0

    def drop_record(self, obj: str, rec_id: int) -> None:
        for pair in PAIRS:
            if obj not in pair:
                continue
            other = pair[1] if pair[0] == obj else pair[0]
            for tid, _ in self.targets(obj, rec_id, other):
                self.remove(obj, rec_id, other, tid)

    def move_record(self, obj: str, old_id: int, new_id: int) -> None:
        """Re-point every association of `old_id` to `new_id` (merges; the last moved keeps primary)."""
        for pair in PAIRS:
            if obj not in pair:
                continue
            other = pair[1] if pair[0] == obj else pair[0]
            for tid, types in self.targets(obj, old_id, other):
                self.remove(obj, old_id, other, tid)
                keep = list(types)
                self.add(obj, new_id, other, tid, keep)


def _name(label: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in label.strip().lower())
