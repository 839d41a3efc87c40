"""CRM search of the HubSpot emulator: filterGroups, one sort, offsets, the 10,000 cap.

Semantics follow HubSpot (api-facts §21): filters in a group are ANDed,
groups ORed; operators EQ NEQ LT LTE GT GTE BETWEEN IN NOT_IN HAS_PROPERTY
NOT_HAS_PROPERTY CONTAINS_TOKEN NOT_CONTAINS_TOKEN; datetime values accept
epoch ms or ISO; `after` is a numeric offset; limit <= 200; asking for
results past 10,000 is a 400 VALIDATION_ERROR; archived records never match.

Speed: a group with a range on the modified-date property walks the table's
modified index, a range on hs_object_id walks the id index, anything else
scans. The matching id list is cached per request body (without after/limit)
and store version, so later pages of the same query cost a slice.
"""

from __future__ import annotations

import fnmatch
import json
import re
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from .objects import HsError
from .properties import Schema
from .store import Rec, Table, to_ms

MAX_RESULTS = 10_000
MAX_LIMIT = 200
OPERATORS = {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY",
             "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}
SEARCHABLE = {
    "contacts": ["firstname", "lastname", "email", "phone", "company"],
    "companies": ["name", "domain", "website"],
    "deals": ["dealname"],
    "tasks": ["hs_task_subject"],
}
_TOKEN = re.compile(r"[^\w]+", re.UNICODE)


def _bad(message: str) -> HsError:
    return HsError(400, "VALIDATION_ERROR", message)


class Searcher:
    """Runs searches over one store, caching result id lists for paging."""

    def __init__(self, cache_size: int = 16) -> None:
        self._cache: OrderedDict[tuple[Any, ...], array[int]] = OrderedDict()
        self._size = cache_size

    def clear(self) -> None:
        self._cache.clear()

    def run(self, obj: str, table: Table, schema: Schema, body: dict[str, Any], version: int,
            visible_before_ms: int | None) -> tuple[int, array[int], int, int]:
        """(total, matching ids, offset, limit) for a search body; raises HsError on bad input."""
        limit = _int(body.get("limit"), 10, "limit")
        if limit < 0 or limit > MAX_LIMIT:
            raise _bad(f"limit must be between 0 and {MAX_LIMIT}; was {limit}")
        after = _int(body.get("after"), 0, "after")
        if after >= MAX_RESULTS:
            raise _bad("Search results are limited to 10,000 total results; the requested page "
                       f"(after={after}) is past that limit. Narrow the query with filters.")
        key_body = {k: v for k, v in body.items() if k not in ("after", "limit", "properties")}
        key = (obj, json.dumps(key_body, sort_keys=True, default=str), version, visible_before_ms)
        ids = self._cache.get(key)
        if ids is None:
            ids = array("q", self._match(obj, table, schema, body, visible_before_ms))
            self._cache[key] = ids
            if len(self._cache) > self._size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return len(ids), ids, after, limit

    # ------------------------------------------------------------ matching
    def _match(self, obj: str, table: Table, schema: Schema, body: dict[str, Any],
               visible_before_ms: int | None) -> list[int]:
        groups = body.get("filterGroups") or []
        if not groups and body.get("filters"):
            # A top-level `filters` list is one AND group: HubSpot's search guide shows it
            # (developers.hubspot.com/docs/guides/api/crm/search) and the API takes it
            # (hubspot-api-nodejs#491); Airbyte's source-hubspot sends its searches so.
            groups = [{"filters": body["filters"]}]
        if len(groups) > 5:
            raise _bad("Too many filter groups: at most 5 are allowed.")
        if sum(len(g.get("filters") or []) for g in groups) > 25:
            raise _bad("Too many filters: at most 25 are allowed across all filter groups.")
        sort_prop, desc = _sort(body.get("sorts"))
        compiled = [self._compile_group(obj, table, schema, g) for g in groups] or [
            ([], None, None, ("id", None, None))]
        query = str(body.get("query") or "").strip().casefold()
        if len(compiled) == 1 and not query:
            fast = _fast(table, compiled[0][3], sort_prop, desc, visible_before_ms)
            if fast is not None:
                return fast
        qpred = _query_pred(SEARCHABLE[obj], query) if query else None
        ids: list[int] = []
        seen: set[int] = set()
        many = len(compiled) > 1
        ordered_by = None
        for preds, mod_range, id_range, _ in compiled:
            if mod_range is not None:
                source: Iterable[Rec] = (table.live[i] for i in table.mod_range_ids(*mod_range))
                ordered_by = "modified"
            elif id_range is not None:
                source = table.by_id(*id_range)
                ordered_by = "id"
            else:
                source = table.by_id(None, None)
                ordered_by = "id"
            for rec in source:
                if visible_before_ms is not None and rec.modified > visible_before_ms:
                    continue
                if qpred is not None and not qpred(rec):
                    continue
                if all(p(rec) for p in preds):
                    if many:
                        if rec.id in seen:
                            continue
                        seen.add(rec.id)
                    ids.append(rec.id)
        if many:
            ids.sort()
            ordered_by = "id"
        return self._sorted(obj, table, schema, ids, sort_prop, desc, ordered_by)

    def _sorted(self, obj: str, table: Table, schema: Schema, ids: list[int], prop: str | None,
                desc: bool, ordered_by: str | None) -> list[int]:
        if prop is None or prop == "hs_object_id":
            if ordered_by != "id":
                ids.sort()
            if desc:
                ids.reverse()
            return ids
        live = table.live
        if prop in (table.mod_prop, "hs_lastmodifieddate", "lastmodifieddate"):
            if ordered_by != "modified":
                ids.sort()
                ids.sort(key=lambda i: live[i].modified)
            if desc:
                ids.reverse()
            return ids
        if prop == "createdate":
            ids.sort()
            ids.sort(key=lambda i: live[i].created, reverse=desc)
            return ids
        conv = _converter(schema, prop)
        ids.sort()

        def key(i: int) -> tuple[int, Any]:
            v = conv(live[i].props.get(prop))
            return (1, 0) if v is None else (0, v)

        present = [i for i in ids if conv(live[i].props.get(prop)) is not None]
        missing = [i for i in ids if conv(live[i].props.get(prop)) is None]
        present.sort(key=key, reverse=desc)
        return present + missing

    def _compile_group(self, obj: str, table: Table, schema: Schema, group: dict[str, Any]
                       ) -> tuple[list[Callable[[Rec], bool]], tuple[Any, Any] | None,
                                  tuple[Any, Any] | None, tuple[str, int | None, int | None] | None]:
        filters = group.get("filters") or []
        if len(filters) > 10:
            raise _bad("Too many filters in a filter group: at most 10 are allowed.")
        preds = []
        mod_lo = mod_hi = id_lo = id_hi = None
        mod_used = id_used = False
        for f in filters:
            name = f.get("propertyName")
            op = str(f.get("operator") or "EQ").upper()
            if op not in OPERATORS:
                raise _bad(f"Unknown operator {op}")
            if not name:
                raise _bad("Each filter needs a propertyName")
            if name not in schema.props:
                raise _bad(f"There was a problem with the request: property {name} does not exist")
            conv = _converter(schema, name)
            getter = _getter(table, name)
            preds.append(_predicate(op, f, conv, getter, schema.props[name].type))
            rng = _range(op, f, conv)
            if rng is not None and name in (table.mod_prop, "hs_lastmodifieddate", "lastmodifieddate"):
                mod_used = True
                mod_lo = _max(mod_lo, rng[0])
                mod_hi = _min(mod_hi, rng[1])
            elif rng is not None and name == "hs_object_id":
                id_used = True
                id_lo = _max(id_lo, rng[0])
                id_hi = _min(id_hi, rng[1])
        mod_range = (_floor(mod_lo), _ceil(mod_hi)) if mod_used else None
        id_range = (_floor(id_lo), _ceil(id_hi)) if id_used else None
        return preds, mod_range, id_range, _pure(table, schema, filters)


# ------------------------------------------------------------------ helpers


def _int(v: Any, default: int, name: str) -> int:
    if v is None or v == "":
        return default
    try:
        return int(str(v))
    except ValueError as e:
        raise _bad(f"{name} must be an integer; was {v!r}") from e


def _sort(sorts: Any) -> tuple[str | None, bool]:
    if not sorts:
        return None, False
    s = sorts[0]
    if isinstance(s, str):
        text = s.strip()
        if text.startswith("{"):
            try:
                s = json.loads(text)
            except ValueError:
                s = text
        else:
            return text.lstrip("-+"), text.startswith("-")
    if isinstance(s, dict):
        return s.get("propertyName"), str(s.get("direction", "ASCENDING")).upper().startswith("DESC")
    return None, False


def _converter(schema: Schema, name: str) -> Callable[[Any], Any]:
    t = schema.props[name].type if name in schema.props else "string"
    if name == "hs_object_id" or t == "number":
        def num(v: Any) -> Any:
            if v is None or v == "":
                return None
            try:
                return float(v)
            except (TypeError, ValueError):
                return None
        return num
    if t in ("datetime", "date"):
        return lambda v: None if v is None or v == "" else to_ms(v)
    return lambda v: None if v is None or v == "" else str(v).casefold()


def _getter(table: Table, name: str) -> Callable[[Rec], Any]:
    if name == "hs_object_id":
        return lambda r: r.id
    if name in (table.mod_prop, "hs_lastmodifieddate", "lastmodifieddate"):
        return lambda r: r.modified
    if name == "createdate":
        return lambda r: r.created
    return lambda r: r.props.get(name)


def _predicate(op: str, f: dict[str, Any], conv: Callable[[Any], Any], getter: Callable[[Rec], Any],
               type_: str) -> Callable[[Rec], bool]:
    def val(rec: Rec) -> Any:
        return conv(getter(rec))

    if op == "HAS_PROPERTY":
        return lambda r: val(r) is not None
    if op == "NOT_HAS_PROPERTY":
        return lambda r: val(r) is None
    if op in ("IN", "NOT_IN"):
        wanted = {conv(v) for v in f.get("values") or []}
        multi = type_ == "enumeration"

        def is_in(r: Rec) -> bool:
            raw = getter(r)
            if multi and isinstance(raw, str) and ";" in raw:
                return any(conv(p) in wanted for p in raw.split(";"))
            return val(r) in wanted

        return is_in if op == "IN" else (lambda r: not is_in(r))
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        token = str(f.get("value") or "").casefold()

        def has(r: Rec) -> bool:
            raw = getter(r)
            if raw is None:
                return False
            text = str(raw).casefold()
            if "*" in token:
                return fnmatch.fnmatchcase(text, token) or any(
                    fnmatch.fnmatchcase(t, token) for t in _TOKEN.split(text) if t)
            return token == text or token in _TOKEN.split(text)

        return has if op == "CONTAINS_TOKEN" else (lambda r: getter(r) is not None and not has(r))
    if op == "BETWEEN":
        lo, hi = conv(f.get("value")), conv(f.get("highValue"))
        return lambda r: (v := val(r)) is not None and lo is not None and hi is not None and lo <= v <= hi
    target = conv(f.get("value"))
    if target is None:
        raise _bad(f"Filter on {f.get('propertyName')} with operator {op} needs a valid value")
    if op == "EQ":
        multi = type_ == "enumeration"

        def eq(r: Rec) -> bool:
            raw = getter(r)
            if multi and isinstance(raw, str) and ";" in raw:
                return any(conv(p) == target for p in raw.split(";"))
            return val(r) == target

        return eq
    if op == "NEQ":
        return lambda r: val(r) != target
    cmp = {"LT": lambda a: a < target, "LTE": lambda a: a <= target,
           "GT": lambda a: a > target, "GTE": lambda a: a >= target}[op]
    return lambda r: (v := val(r)) is not None and cmp(v)


def _range(op: str, f: dict[str, Any], conv: Callable[[Any], Any]) -> tuple[Any, Any] | None:
    if op in ("GT", "GTE"):
        v = conv(f.get("value"))
        return None if v is None else (v, None)
    if op in ("LT", "LTE"):
        v = conv(f.get("value"))
        return None if v is None else (None, v)
    if op == "EQ":
        v = conv(f.get("value"))
        return None if v is None or isinstance(v, str) else (v, v)
    if op == "BETWEEN":
        lo, hi = conv(f.get("value")), conv(f.get("highValue"))
        return None if lo is None or hi is None else (lo, hi)
    return None


_MOD_PROPS = ("hs_lastmodifieddate", "lastmodifieddate")


def _pure(table: Table, schema: Schema, filters: list[dict[str, Any]]
          ) -> tuple[str, int | None, int | None] | None:
    """("mod"|"id", lo, hi) with exact integer bounds when every filter is a range on one index."""
    kind = None
    lo: int | None = None
    hi: int | None = None
    for f in filters:
        name = f.get("propertyName")
        k = "mod" if name in (table.mod_prop, *_MOD_PROPS) else "id" if name == "hs_object_id" else None
        if k is None or (kind is not None and k != kind):
            return None
        kind = k
        b = _exact(str(f.get("operator") or "EQ").upper(), f, _converter(schema, str(name)))
        if b is None:
            return None
        lo = _max(lo, b[0])
        hi = _min(hi, b[1])
    return None if kind is None else (kind, lo, hi)


def _exact(op: str, f: dict[str, Any], conv: Callable[[Any], Any]) -> tuple[Any, Any] | None:
    import math

    if op == "BETWEEN":
        a, b = conv(f.get("value")), conv(f.get("highValue"))
        return None if a is None or b is None else (math.ceil(a), math.floor(b))
    v = conv(f.get("value"))
    if v is None or isinstance(v, str):
        return None
    return {"GT": (math.floor(v) + 1, None), "GTE": (math.ceil(v), None),
            "LT": (None, math.ceil(v) - 1), "LTE": (None, math.floor(v)),
            "EQ": (v, v) if v == int(v) else (1, 0)}.get(op)


def _fast(table: Table, pure: tuple[str, int | None, int | None] | None, sort_prop: str | None,
          desc: bool, visible_before_ms: int | None) -> list[int] | None:
    """Index slices for the common pull queries (modified window, id window); else None."""
    if pure is None:
        return None
    kind, lo, hi = pure
    if kind == "mod" and sort_prop in (table.mod_prop, *_MOD_PROPS):
        if visible_before_ms is not None:
            hi = _min(hi, visible_before_ms)
        ids = [] if lo is not None and hi is not None and lo > hi else table.mod_range_ids(lo, hi)
    elif kind == "id" and sort_prop in (None, "hs_object_id") and visible_before_ms is None:
        ids = [] if lo is not None and hi is not None and lo > hi else table.id_range_ids(lo, hi)
    else:
        return None
    if desc:
        ids.reverse()
    return ids


def _max(a: Any, b: Any) -> Any:
    return b if a is None else (a if b is None else max(a, b))


def _min(a: Any, b: Any) -> Any:
    return b if a is None else (a if b is None else min(a, b))


def _floor(v: Any) -> int | None:
    return None if v is None else int(v // 1)


def _ceil(v: Any) -> int | None:
    return None if v is None else int(-(-v // 1))


def _query_pred(props: list[str], query: str) -> Callable[[Rec], bool]:
    def match(r: Rec) -> bool:
        for p in props:
            v = r.props.get(p)
            if v and (str(v).casefold().startswith(query)
                      or any(t.startswith(query) for t in _TOKEN.split(str(v).casefold()))):
                return True
        return False

    return match
