"""Pulling HubSpot records as canonical pages: full, incremental, archived, merged.

Which path a full pull takes (measured, tests/connectors/test_hubspot_e2e.py
`test_full_pull_search_path_is_cheaper_than_list`):

    list   GET /crm/v3/objects/{type}?limit=100&associations=...   ceil(n/100) calls
           (+1 per record whose inline association list pages)
    search POST /crm/v3/objects/{type}/search, limit 200, sorted by hs_object_id,
           filter hs_object_id > last id                          ceil(n/200) calls
           + v4 batch association reads, 1,000 ids each          ceil(n/1000) per pair type

For contacts (one pair type) search costs 0.6x the list path's calls
(100k contacts: 500 + 100 = 600 vs 1,000), for deals (two) 0.7x, for
companies (none) 0.5x; so `full_pull = "search"` is the default. The list path
is kept (`full_pull = "list"`) for portals whose search rate is tighter than
their general rate, and it is what lists archived records.

Key-based paging everywhere. Each search query starts at offset 0 with
`hs_object_id GT <last id seen>` (the documented way past the 10,000-result
cap, P1), so no query ever pages past 10,000 and windows cost zero extra
calls. It also keeps a pull exact while records change under it: with offset
paging (`after=200, 400, ...`) a record archived or re-sorted behind the
current offset shifts every later record back by one, and the record pushed
across the page edge is skipped for good (P3, P10). Only an empty page that
still announces `paging.next` (P2) is followed by its offset, since there is
no last id to continue from.

Incremental pulls search `lastmodifieddate` (contacts) / `hs_lastmodifieddate`
>= cursor - lookback (default 5 min: HubSpot's search index lags writes, P6)
in the same id order; records modified during the run either are still ahead
of the id position (seen now) or carry a modified date after the run start
(seen next run). The saved cursor is never later than the run's start by
HubSpot's clock (Date header of the first response; the local clock may be
off, O5) nor the caller's `started_at`, minus `SKEW`.

Archived records do not change their modified date and never appear in
search (D3): every incremental pull also lists `archived=true` records
(only archived ones; 100 per call, so each object costs ceil(archived/100)
calls per run for the archive HubSpot keeps, ~90 days) and yields those
archived since cursor - lookback as deleted. Merged records (D4): a survivor's
`hs_merged_object_ids` names the losers; they are yielded as deleted with
`merged_into` = the survivor.

Contact roles come from deal-contact association labels (USER_DEFINED; one
row per label on a pair) and from the contact's `hs_buying_role`. The deal
and contact pulls of the same run already read both, so they keep compact
role rows (`_stash`) that the contact_roles pull then emits without calls;
when that pull runs alone (a resumed run) it walks deals and contacts itself.
Incremental role pulls also yield deletions for the labels / buying-role
values a changed pair no longer has (ids are deterministic; the connector
cannot see the old value, so it names every defined label / hs_buying_role
option the pair lacks: at most one tombstone row per option and changed
contact, written once). A contact merge moves the losers' deal associations
to the survivor without touching the deals: the incremental role pull re-reads
those deals' labels (v4 contacts->deals, deals->contacts, deals batch read for
their modified dates) and retires the losers' rows (D4). Label changes that
do not touch the deal's modified date (D7) are seen by the association sweep.

Association sweep (`sweep_associations`, after an incremental pull; sync/pull.py
compares with the mirror): a contact's primary company and a deal-contact label
are association facts, and HubSpot moves no searchable date when only a label
changes (and, unconfirmed, maybe not when the primary company changes). So
each incremental also reads every live company's and deal's contact
associations (v4, 1,000 records per call: `company_contacts`, `deal_labels`)
and reads again only what the mirror disagrees with (`reread`, `reread_labels`).

Cursors (JSON, stored by state/cursors.py):
    {"modified_ms": N}                               finished; next pull is incremental
    {"mode": "full"|"incremental", "after_id", "since_ms", "run_start_ms", ...}
    {"mode": "archived", "after", ...}               in progress; a killed pull resumes
"""

from __future__ import annotations

import logging
import sys
from array import array
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from crmsync.connectors.errors import CrmError, MalformedRecord
from crmsync.state.batch import batched
from crmsync.state.model import CrmRecord, Cursor, ObjectType, Page
from crmsync.state.schema_cache import MemorySchemaStore, SchemaStore

from . import fields as f
from .client import HubSpotClient, Settings
from .fields import Edge, ObjectMap

log = logging.getLogger(__name__)

SKEW = timedelta(seconds=30)
SEARCH_LIMIT = 200  # HubSpot's max per search page
LIST_LIMIT = 100  # max per list page
ASSOC_BATCH = 1000  # max inputs per v4 batch association read
CHUNK = 1000  # records per yielded Page on the search path (= one association batch)
# ... or fewer: a chunk ends once its property values hold this much memory (X3). A
# HubSpot text value can be 65,536 characters entered in the CRM and more from a form
# (knowledge.hubspot.com "property field types"), and Python holds a value with one emoji
# at 4 bytes a character: 1,000 records of 60,000 characters were 700 MiB of peak RSS
# (bench/README.md "Big records"). Ordinary records (a few KiB) never reach it; big ones
# cost more association reads (one per chunk) instead of memory.
CHUNK_BYTES = 64 * 2**20
OWNERS_LIMIT = 500
OWNERS_KEY = "owners"  # the kept owners' ids (state/schema_cache.py)
MAX_EMPTY_PAGES = 50

API = {
    f.CONTACTS: "crm.contacts",
    f.COMPANIES: "crm.companies",
    f.DEALS: "crm.deals",
    f.TASKS: "crm.objects.tasks",
}


@dataclass
class _Stash:
    """Role rows seen by the deal / contact pulls of this run, for the contact_roles pull."""

    mode: str  # "full" | "incremental"
    since_ms: int | None
    started_at: datetime  # identifies the run that made it
    run_start_ms: int
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    merges: list[tuple[str, str]] = field(default_factory=list)  # (survivor, loser)
    complete: bool = False


@dataclass
class _Run:
    """Mutable state of one pull of one object."""

    mode: str
    since_ms: int | None
    run_start_ms: int | None
    started_at: datetime
    clock_start: float  # HubSpotClient.clock() when the pull began
    losers: set[str] = field(default_factory=set)


class Puller:
    def __init__(self, client: HubSpotClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.maps = f.object_maps(settings)
        self.lookback_ms = settings.lookback_minutes * 60_000
        self._schema: dict[str, dict[str, Mapping[str, Any]]] = {}
        # Property lists and owner ids kept between runs (the mirror's once sync/run.py hands
        # it over: HubSpotConnector.use_schema_store; issue 14).
        self.store: SchemaStore = MemorySchemaStore()
        self._read_now: set[str] = set()  # object types whose properties this run read
        self._owner_ids: set[str] | None = None  # the kept owners' ids, once read
        # Ids records named that the owners listing lacked when last read (a deleted owner):
        # not a reason to read the owners again until they are `owners_max_age` old.
        self._missing_owners: set[str] = set()
        self._wanted_owners: set[str] = set()  # named by records, unknown: owners read again
        self._owners_again = False
        self._warned: set[tuple[str, str]] = set()
        self._warned_fixes: set[tuple[str, str, str]] = set()
        self._labels: list[str] | None = None
        self._stash: dict[str, _Stash] = {}
        self.malformed = 0
        self._buyer = partial(f.buying_role, names=settings.role_names())
        # what a reconcile's contact and deal listings saw, for its contact-role ids
        self._reconcile_buyers: list[str] | None = None
        self._reconcile_deals: array[int] | None = None

    # ------------------------------------------------------------ entry

    def pull(
        self, obj: ObjectType, cursor: Cursor | None, *, full: bool, started_at: datetime
    ) -> Iterator[Page]:
        if obj is ObjectType.OWNER:
            yield from self._owners(cursor, full, started_at)
        elif obj is ObjectType.CONTACT_ROLE:
            yield from self._roles(cursor, full, started_at)
        else:
            yield from self._objects(self.maps[obj], cursor, full, started_at)

    def _begin(
        self, cursor: Cursor | None, full: bool, started_at: datetime
    ) -> tuple[_Run, dict[str, Any]]:
        """The run state for `cursor`: resume an unfinished pull, else start full or incremental."""
        c = dict(cursor or {})
        mode = c.get("mode")
        resumable = (full and mode == "full") or (
            not full and mode in ("full", "incremental", "archived")
        )
        if not resumable:
            if full or "modified_ms" not in c:
                c = {"mode": "full"}
            else:
                marks: dict[str, Any] = {k: c[k] for k in ("labels_ms", "buyers_ms") if k in c}
                c = {"mode": "incremental", "since_ms": int(c["modified_ms"]), **marks}
        run = _Run(
            mode="full" if c["mode"] == "full" else "incremental",
            since_ms=c.get("since_ms"),
            run_start_ms=c.get("run_start_ms"),
            started_at=started_at if started_at.tzinfo else started_at.replace(tzinfo=UTC),
            clock_start=self.client.clock(),
        )
        return run, c

    def _run_start(self, run: _Run) -> int:
        """The cursor cap: run start by HubSpot's clock and the caller's, minus SKEW."""
        if run.run_start_ms is None:
            server = self.client.server_now()
            if server is not None:
                # HubSpot's clock when the pull began: the last Date header, less the time
                # since the pull began, less a second (Date is truncated to the second)
                server -= timedelta(seconds=max(0.0, self.client.clock() - run.clock_start) + 1)
            start = min(t for t in (server, run.started_at) if t is not None)
            run.run_start_ms = f.to_ms(start - SKEW)
        return run.run_start_ms

    def _cursor(self, run: _Run, **kw: Any) -> dict[str, Any]:
        return {
            "mode": run.mode,
            "since_ms": run.since_ms,
            "run_start_ms": self._run_start(run),
            **kw,
        }

    def _done(self, obj: ObjectType, run: _Run) -> Page:
        return Page(obj, [], {"modified_ms": self._run_start(run)}, done=True)

    def _low(self, run: _Run) -> int:
        assert run.since_ms is not None
        return max(0, run.since_ms - self.lookback_ms)

    # ------------------------------------------------------------ schema

    def schema(self, hs_type: str, *, fresh: bool = False) -> dict[str, Mapping[str, Any]]:
        """The portal's property definitions of `hs_type`: read at most once a run, and not
        at all while the kept list is younger than `schema_max_age_hours` (issue 14);
        `fresh`: read now unless this run already did."""
        if fresh and hs_type not in self._read_now:
            self._schema.pop(hs_type, None)
        if hs_type not in self._schema:
            key = f"properties:{hs_type}"
            kept = self.store.get(key)
            if (
                not fresh
                and kept is not None
                and kept.fresh(self.store.now, self.settings.schema_max_age)
            ):
                results = kept.body
            else:
                self._read_now.add(hs_type)
                resp = self.client.call(
                    "properties", "crm.properties.core_api", "get_all", hs_type, archived=False
                )
                results = (resp.body or {}).get("results") or []
                self.store.put(key, results)
            self._schema[hs_type] = {
                str(p.get("name")): p for p in results or [] if p.get("name")
            }
        return self._schema[hs_type]

    def kept_schema(self, hs_type: str) -> bool:
        """The property list of `hs_type` in use came from an earlier run."""
        return hs_type in self._schema and hs_type not in self._read_now

    def forget_schema(self) -> None:
        """Read property definitions again on next use (after setup created some)."""
        for hs_type in [*self._schema, *(m.hs_type for m in self.maps.values())]:
            self.store.drop(f"properties:{hs_type}")
        self._schema.clear()

    def pull_again(self) -> list[ObjectType]:
        """Owners, when a record pulled since named an owner the kept owners lack."""
        again, self._owners_again = self._owners_again, False
        return [ObjectType.OWNER] if again else []

    def _kept_owners(self) -> tuple[set[str], set[str]]:
        """(owner ids, ids records named that HubSpot did not list) as kept."""
        kept = self.store.get(OWNERS_KEY)
        body = kept.body if kept is not None and isinstance(kept.body, dict) else {}
        return set(body.get("ids") or ()), set(body.get("missing") or ())

    def _note_owner(self, rec: CrmRecord) -> None:
        """A record names an owner: one the kept owners lack (and did not lack when they were
        read) makes them stale; sync/pull.py then pulls them again (`pull_again`)."""
        owner = rec.values.get("owner_id")
        if not owner:
            return
        if self._owner_ids is None:
            ids, self._missing_owners = self._kept_owners()
            self._owner_ids = ids | self._missing_owners
        owner = str(owner)
        if owner in self._owner_ids or owner in self._wanted_owners:
            return
        if not self._wanted_owners:
            log.info(
                "HubSpot record names an owner the kept owners list lacks; owners read again",
                extra={"crm": "hubspot", "object": str(rec.object), "id": rec.id},
            )
            self.store.drop(OWNERS_KEY)
            self._owners_again = True
        self._wanted_owners.add(owner)

    def properties(self, spec: ObjectMap) -> list[str]:
        props, missing = spec.properties(self.schema(spec.hs_type))
        new = [m for m in missing if (spec.hs_type, m) not in self._warned]
        if new:
            self._warned.update((spec.hs_type, m) for m in new)
            log.warning(
                "HubSpot %s lacks properties %s; they are left out of the pull. Run `crmsync "
                "setup --crm hubspot` for crmsync's own, or fix [hubspot] field names.",
                spec.hs_type,
                ", ".join(new),
                extra={"crm": "hubspot", "object": spec.hs_type, "missing": new},
            )
        return props

    def _buying_role_options(self) -> list[str]:
        prop = self.schema(f.CONTACTS).get(f.BUYING_ROLE) or {}
        return [str(o.get("value")) for o in prop.get("options") or [] if o.get("value")]

    def _label_names(self) -> list[str]:
        if self._labels is None:
            resp = self.client.call(
                "assoc_labels",
                "crm.associations.v4.schema.definitions_api",
                "get_all",
                f.DEALS,
                f.CONTACTS,
            )
            self._labels = [
                str(r["label"])
                for r in (resp.body or {}).get("results") or []
                if r.get("category") == f.USER_DEFINED and r.get("label")
            ]
        return self._labels

    # ------------------------------------------------------------ walks

    def _search(
        self,
        spec: ObjectMap,
        props: list[str],
        filters: list[dict[str, Any]],
        after_id: str | None,
    ) -> Iterator[list[Mapping[str, Any]]]:
        """Search pages in hs_object_id order, each query restarting after the last id (P1, P10)."""
        api = API[spec.hs_type] + ".search_api"
        offset = "0"
        empty = 0
        last = int(after_id) if after_id else -1
        while True:
            fs = list(filters)
            if after_id:
                fs.append({"propertyName": f.ID_PROPERTY, "operator": "GT", "value": str(after_id)})
            body = {
                "filterGroups": [{"filters": fs}] if fs else [],
                "sorts": [{"propertyName": f.ID_PROPERTY, "direction": "ASCENDING"}],
                "properties": props,
                "limit": SEARCH_LIMIT,
                "after": offset,
            }
            resp = self.client.call("search", api, "do_search", public_object_search_request=body)
            data = resp.body or {}
            # ids only grow along the walk; one at or below the last is a repeat (dedupe)
            results = [r for r in data.get("results") or [] if _int_id(r) < 0 or _int_id(r) > last]
            nxt = ((data.get("paging") or {}).get("next") or {}).get("after")
            if results:
                empty, offset = 0, "0"
                last = max(last, *(_int_id(r) for r in results))
                after_id = str(last) if last >= 0 else after_id
                yield results
            elif nxt:
                empty += 1  # P2: an empty page that says there is more: follow its offset
                if empty > MAX_EMPTY_PAGES or int(nxt) >= 10_000:
                    raise CrmError(
                        f"HubSpot search on {spec.hs_type} kept answering empty pages",
                        crm="hubspot",
                        operation="search",
                    )
                offset = str(nxt)
            if not nxt:
                return

    def _chunks(
        self,
        spec: ObjectMap,
        props: list[str],
        filters: list[dict[str, Any]],
        after_id: str | None,
    ) -> Iterator[list[Mapping[str, Any]]]:
        """Search results regrouped into chunks of CHUNK records or CHUNK_BYTES of values,
        whichever comes first (one association batch each)."""
        buf: list[Mapping[str, Any]] = []
        held = 0
        for page in self._search(spec, props, filters, after_id):
            for record in page:
                buf.append(record)
                held += _held_bytes(record)
                if len(buf) >= CHUNK or held >= CHUNK_BYTES:
                    yield buf
                    buf, held = [], 0
        if buf:
            yield buf

    def _list(
        self,
        spec: ObjectMap,
        props: list[str],
        *,
        archived: bool,
        after: str | None,
        associations: Sequence[str] = (),
    ) -> Iterator[tuple[list[Mapping[str, Any]], str | None]]:
        """List pages (100) with their next `after` token (key-based in HubSpot, P10)."""
        api = API[spec.hs_type] + ".basic_api"
        while True:
            kw: dict[str, Any] = {"limit": LIST_LIMIT, "properties": props, "archived": archived}
            if after:
                kw["after"] = after
            if associations:
                kw["associations"] = list(associations)
            resp = self.client.call("list", api, "get_page", **kw)
            data = resp.body or {}
            after = ((data.get("paging") or {}).get("next") or {}).get("after")
            yield list(data.get("results") or []), after
            if not after:
                return

    def read_edges(self, from_type: str, to_type: str, ids: Sequence[str]) -> dict[str, list[Edge]]:
        """v4 batch association reads (1,000 ids per call), following per-record paging (X7)."""
        found: dict[str, list[Edge]] = defaultdict(list)
        pending: list[dict[str, str]] = [{"id": i} for i in ids]
        while pending:
            again: list[dict[str, str]] = []
            for chunk in batched(pending, ASSOC_BATCH):
                resp = self.client.call(
                    "assoc_read",
                    "crm.associations.v4.batch_api",
                    "get_page",
                    from_type,
                    to_type,
                    batch_input_public_fetch_associations_batch_request={"inputs": chunk},
                )
                for item in (resp.body or {}).get("results") or []:
                    fid = str((item.get("from") or {}).get("id"))
                    found[fid].extend(
                        f.edge_from_v4(t, from_type, to_type) for t in item.get("to") or []
                    )
                    after = ((item.get("paging") or {}).get("next") or {}).get("after")
                    if after:
                        again.append({"id": fid, "after": str(after)})
            pending = again
        return {k: f.merge_edges(v) for k, v in found.items()}

    def _all_edges(self, from_type: str, rid: str, to_type: str) -> list[Edge]:
        """One record's whole association list via v4 (500 per call), for a paged inline list."""
        out: list[Edge] = []
        cursor: str | None = None
        while True:
            kw: dict[str, Any] = {"limit": 500}
            if cursor:
                kw["after"] = cursor
            resp = self.client.call(
                "assoc_list",
                "crm.associations.v4.basic_api",
                "get_page",
                from_type,
                rid,
                to_type,
                **kw,
            )
            data = resp.body or {}
            out.extend(f.edge_from_v4(t, from_type, to_type) for t in data.get("results") or [])
            cursor = ((data.get("paging") or {}).get("next") or {}).get("after")
            if not cursor:
                return out

    # ------------------------------------------------------------ objects

    def _objects(
        self, spec: ObjectMap, cursor: Cursor | None, full: bool, started_at: datetime
    ) -> Iterator[Page]:
        run, c = self._begin(cursor, full, started_at)
        props = self.properties(spec)
        if c["mode"] in ("full", "incremental"):
            if run.mode == "full" and self.settings.full_pull == "list" and not c.get("after_id"):
                yield from self._objects_by_list(spec, run, props, c.get("after"))
            else:
                yield from self._objects_by_search(spec, run, props, c.get("after_id"))
            c = {"mode": "archived"}
        if run.mode == "incremental":
            yield from self._archived(spec, run, c.get("after"))
        yield self._done(spec.object, run)

    def _filters(self, spec: ObjectMap, run: _Run) -> list[dict[str, Any]]:
        fs: list[dict[str, Any]] = []
        if spec.required_filter:
            fs.append({"propertyName": spec.required_filter, "operator": "HAS_PROPERTY"})
        if run.mode == "incremental":
            fs.append(
                {
                    "propertyName": spec.modified_property,
                    "operator": "GTE",
                    "value": str(self._low(run)),
                }
            )
        return fs

    def _objects_by_search(
        self, spec: ObjectMap, run: _Run, props: list[str], after_id: str | None
    ) -> Iterator[Page]:
        stash = self._stash_start(spec, run, fresh=after_id is None)
        if spec.required_filter and spec.required_filter not in self.schema(spec.hs_type):
            # e.g. tasks before `crmsync setup`: no record can carry crmsync's key yet
            if stash is not None:
                stash.complete = True
            return
        for chunk in self._chunks(spec, props, self._filters(spec, run), after_id):
            ids = [str(r.get("id")) for r in chunk]
            edges = {to: self.read_edges(spec.hs_type, to, ids) for to in spec.associations}
            records = self._map(spec, run, chunk, edges)
            self._stash_add(spec, run, stash, chunk, edges)
            yield Page(spec.object, records, self._cursor(run, after_id=_last_id(chunk)))
        if stash is not None:
            # What the stash covers: every change up to this pull's own cursor, also when
            # nothing changed (a stash left at 0 would send the next role pull back to 1970).
            stash.run_start_ms = self._run_start(run)
            stash.complete = True

    def _objects_by_list(
        self, spec: ObjectMap, run: _Run, props: list[str], after: str | None
    ) -> Iterator[Page]:
        inline = tuple(
            a for a in spec.associations if not (spec.hs_type == f.DEALS and a == f.CONTACTS)
        )
        for page, nxt in self._list(spec, props, archived=False, after=after, associations=inline):
            edges: dict[str, dict[str, list[Edge]]] = {to: {} for to in spec.associations}
            for r in page:
                rid = str(r.get("id"))
                assoc = r.get("associations") or {}
                for to in inline:
                    block = assoc.get(to) or {}
                    if (block.get("paging") or {}).get("next"):
                        # The inline list is cut (X7). Its `after` token belongs to the v3
                        # association list (one entry per type), not to v4 (one per record):
                        # read this record's whole list through v4 instead.
                        es = self._all_edges(spec.hs_type, rid, to)
                    else:
                        es = [
                            f.edge_from_v3(a, spec.hs_type, to) for a in block.get("results") or []
                        ]
                    edges[to][rid] = f.merge_edges(es)
            records = self._map(spec, run, page, edges)
            yield Page(spec.object, records, self._cursor(run, via="list", after=nxt))

    def _map(
        self,
        spec: ObjectMap,
        run: _Run,
        raws: Iterable[Mapping[str, Any]],
        edges: Mapping[str, Mapping[str, Sequence[Edge]]],
    ) -> list[CrmRecord]:
        out: list[CrmRecord] = []
        live: set[str] = set()
        fixed: dict[tuple[str, str], list[str]] = defaultdict(list)
        for raw in raws:
            try:
                rid = f.record_id(raw)
                raw, fixes = f.clean_record(raw)
                for fix in fixes:
                    fixed[fix].append(rid)
                rec, problems = f.to_record(
                    spec, raw, {to: e.get(rid, []) for to, e in edges.items()}
                )
            except MalformedRecord as e:
                self.malformed += 1
                log.warning(
                    "skipping malformed HubSpot %s %s: %s",
                    spec.hs_type,
                    e.record_id or "?",
                    e,
                    extra={"crm": "hubspot", "object": spec.hs_type, "id": e.record_id},
                )
                continue
            if problems:
                log.warning(
                    "HubSpot %s %s: unreadable values in %s kept in raw, mapped as empty",
                    spec.hs_type,
                    rid,
                    ", ".join(problems),
                    extra={
                        "crm": "hubspot",
                        "object": spec.hs_type,
                        "id": rid,
                        "properties": problems,
                    },
                )
            out.append(rec)
            live.add(rid)
            self._note_owner(rec)
            for loser in f.merged_losers(raw):
                if loser in live or loser in run.losers:
                    continue
                run.losers.add(loser)
                out.append(
                    CrmRecord(
                        spec.object,
                        loser,
                        rec.modified_at,
                        deleted=True,
                        raw={"id": loser, "mergedInto": rid},
                        merged_into=rid,
                    )
                )
        self._log_fixes(spec.hs_type, fixed)
        return out

    def _log_fixes(self, hs_type: str, fixed: Mapping[tuple[str, str], list[str]]) -> None:
        """Values cleaned on the way in (NUL, lone surrogate): by property and record id,
        never the value; a warning the first time in a run, then debug."""
        for (prop, what), ids in fixed.items():
            first = (hs_type, prop, what) not in self._warned_fixes
            self._warned_fixes.add((hs_type, prop, what))
            log.log(
                logging.WARNING if first else logging.DEBUG,
                "hubspot %s.%s: %s in %d record(s)",
                hs_type,
                prop,
                what,
                len(ids),
                extra={
                    "crm": "hubspot",
                    "object": hs_type,
                    "field": prop,
                    "problem": what,
                    "records": len(ids),
                    "record_ids": ids[:5],
                },
            )

    def _archived(self, spec: ObjectMap, run: _Run, after: str | None) -> Iterator[Page]:
        """Records archived since cursor - lookback, as deletions (D3)."""
        low = self._low(run)
        props = [f.ID_PROPERTY, spec.modified_property]
        if spec.required_filter:
            props.append(spec.required_filter)
        for page, nxt in self._list(spec, props, archived=True, after=after):
            records = []
            for raw in page:
                rid = str(raw.get("id"))
                if spec.required_filter and not (raw.get("properties") or {}).get(
                    spec.required_filter
                ):
                    continue  # e.g. a task crmsync did not create
                try:
                    at = f.parse_datetime(raw.get("archivedAt"))
                except ValueError:
                    at = None
                if rid in run.losers or (at is not None and f.to_ms(at) < low):
                    continue
                run.losers.add(rid)
                records.append(
                    CrmRecord(
                        spec.object,
                        rid,
                        at or f.modified_at(spec.modified_property, raw),
                        deleted=True,
                        raw=dict(raw),
                    )
                )
            yield Page(spec.object, records, {**self._cursor(run, after=nxt), "mode": "archived"})

    # ------------------------------------------------------------ association sweep

    def company_contacts(self, company_ids: Iterable[str]) -> Iterator[tuple[str, str, bool]]:
        """(contact id, company id, primary) for every contact of `company_ids`.

        v4 batch reads companies -> contacts, 1,000 companies per call, plus one call per
        further 500 contacts of a company that has more (X7). A contact's primary company
        shows from the company's side as type 2 "Company to contact (Primary)". This is how
        an incremental pull sees a contact moved to another primary company when the move
        changed no date (sync/pull.py `company_moves`): on a portal where the move does
        move `lastmodifieddate`, as HubSpot's definitions imply, the search already saw it
        and this finds nothing to re-read.
        """
        for chunk in batched(company_ids, ASSOC_BATCH):
            for company, edges in self.read_edges(f.COMPANIES, f.CONTACTS, chunk).items():
                for e in edges:
                    yield e.to_id, company, e.primary

    def deal_labels(self, deal_ids: Iterable[str]) -> Iterator[tuple[str, str]]:
        """(deal id, contact-role id) for every USER_DEFINED label on the deals' contact
        associations: v4 batch reads deals -> contacts, 1,000 deals per call. A label added
        to or removed from a pair changes no property of either record, so no search finds
        it (airbytehq/airbyte#27199); sync/pull.py `label_changes` compares these with the
        mirror and has the deals whose labels differ read again (`reread_labels`)."""
        for chunk in batched(deal_ids, ASSOC_BATCH):
            for deal, edges in self.read_edges(f.DEALS, f.CONTACTS, chunk).items():
                for e in edges:
                    for label in e.labels:
                        yield deal, f.label_role_id(deal, e.to_id, label)

    def reread_labels(self, deal_ids: Sequence[str], started_at: datetime) -> Iterator[Page]:
        """The label role rows of `deal_ids` as an incremental pull makes them (the deals'
        modified dates by batch read, 100 per call, their labels by v4, 1,000 per call):
        each label a pair holds, and a retired row for each defined label it lacks."""
        spec = self.maps[ObjectType.OPPORTUNITY]
        run, _ = self._begin(None, False, started_at)
        props = [f.ID_PROPERTY, spec.modified_property, f.MERGED_IDS]
        for chunk in batched(deal_ids, CHUNK):
            raws = self._batch_read(spec, props, chunk)
            edges = self.read_edges(f.DEALS, f.CONTACTS, [str(r.get("id")) for r in raws])
            records = [f.label_role(*row) for row in self._label_rows(raws, edges, run.mode)]
            yield Page(ObjectType.CONTACT_ROLE, records, None)

    def reread(self, obj: ObjectType, ids: Sequence[str], started_at: datetime) -> Iterator[Page]:
        """Records of `obj` by id, mapped as the search path maps them: batch reads (100 per
        call) plus the v4 association reads (1,000 per call). Pages carry no cursor; ids
        that no longer exist are left out (their deletion is the archived listing's)."""
        spec = self.maps[obj]
        props = self.properties(spec)
        run, _ = self._begin(None, False, started_at)
        for chunk in batched(ids, CHUNK):
            raws = self._batch_read(spec, props, chunk)
            found = [str(r.get("id")) for r in raws]
            edges = {to: self.read_edges(spec.hs_type, to, found) for to in spec.associations}
            yield Page(obj, self._map(spec, run, raws, edges), None)

    def _batch_read(
        self, spec: ObjectMap, props: list[str], ids: Sequence[str]
    ) -> list[Mapping[str, Any]]:
        """Records by id with `props` (batch read, LIST_LIMIT per call); missing ids are absent."""
        raws: list[Mapping[str, Any]] = []
        for part in batched(ids, LIST_LIMIT):
            resp = self.client.call(
                "batch_read",
                API[spec.hs_type] + ".batch_api",
                "read",
                batch_read_input_simple_public_object_id={
                    "properties": props,
                    "inputs": [{"id": i} for i in part],
                },
            )
            raws.extend((resp.body or {}).get("results") or [])
        return raws

    # ------------------------------------------------------------ reconcile

    def reconcile_ids(self, obj: ObjectType, *, via: str = "list") -> Iterator[str] | None:
        """Every id HubSpot holds of `obj` (live records; tasks: those with crmsync's key),
        streamed; None when it cannot be listed (tasks before `crmsync setup`).

        Measured against the sandbox (bench/README.md "Reconcile"): the list endpoint
        (`via="list"`, 100 ids per call, only hs_object_id) costs twice the calls of a
        search walk (`via="search"`, 200 per call, keyed past the 10,000 cap), but it
        reads the records themselves, while search reads an index that lags writes (P6)
        and counts against the 5 per second search limit the incremental pulls share. A
        reconcile deletes on absence, so it lists: an id missing from a lagging index
        would resolve flags and complete tasks of a live record. Tasks are the exception:
        the list endpoint would read every task of the portal, search only crmsync's.

        Contact roles have no records of their own: their ids come from the deal ->
        contact labels (v4 reads over the deal ids this reconcile just listed) and the
        contacts' hs_buying_role values (read with the contact listing, no extra call).
        Run in reconcile's order (accounts, contacts, opportunities, roles) that costs
        ceil(deals / 1,000) calls; alone it lists contacts and deals again.
        """
        if obj is ObjectType.CONTACT_ROLE:
            return self._role_ids()
        spec = self.maps[obj]
        if spec.required_filter:
            if spec.required_filter not in self.schema(spec.hs_type):
                return None
            return self._search_ids(spec, [spec.required_filter], via="search")
        extra = [f.BUYING_ROLE] if obj is ObjectType.CONTACT else []
        return self._search_ids(spec, extra, via=via)

    def _search_ids(self, spec: ObjectMap, extra: list[str], *, via: str) -> Iterator[str]:
        props = [f.ID_PROPERTY, *extra]
        buyers: list[str] | None = [] if spec.object is ObjectType.CONTACT else None
        deals: array[int] | None = array("q") if spec.object is ObjectType.OPPORTUNITY else None
        if via == "search" or spec.required_filter:
            filters = (
                [{"propertyName": spec.required_filter, "operator": "HAS_PROPERTY"}]
                if spec.required_filter
                else []
            )
            pages: Iterable[list[Mapping[str, Any]]] = self._search(spec, props, filters, None)
        else:
            pages = (page for page, _ in self._list(spec, props, archived=False, after=None))
        for page in pages:
            for raw in page:
                rid = str(raw.get("id"))
                if buyers is not None:
                    buyers.extend(f.buying_role_id(rid, v) for v in f.buying_roles(raw))
                if deals is not None:
                    deals.append(int(rid))
                yield rid
        if buyers is not None:
            self._reconcile_buyers = buyers
        if deals is not None:
            self._reconcile_deals = deals

    def _role_ids(self) -> Iterator[str]:
        buyers, self._reconcile_buyers = self._reconcile_buyers, None
        deals, self._reconcile_deals = self._reconcile_deals, None
        if buyers is None:
            for _ in self._search_ids(self.maps[ObjectType.CONTACT], [f.BUYING_ROLE], via="list"):
                pass
            buyers, self._reconcile_buyers = self._reconcile_buyers, None
        yield from buyers or ()
        if deals is None:
            for _ in self._search_ids(self.maps[ObjectType.OPPORTUNITY], [], via="list"):
                pass
            deals, self._reconcile_deals = self._reconcile_deals, None
        for chunk in batched((str(d) for d in deals or ()), ASSOC_BATCH):
            for deal, edges in self.read_edges(f.DEALS, f.CONTACTS, chunk).items():
                for e in edges:
                    for label in e.labels:
                        yield f.label_role_id(deal, e.to_id, label)

    # ------------------------------------------------------------ owners

    def _owners(
        self, cursor: Cursor | None, full: bool, started_at: datetime
    ) -> Iterator[Page]:
        """All owners (a few calls); archived (deactivated) ones are inactive. An incremental
        reads none while the kept owners are younger than `owners_max_age_minutes` and no
        record named an owner they lack (issue 14)."""
        run, c = self._begin(None, True, started_at)
        c = dict(cursor or {})
        kept = self.store.get(OWNERS_KEY)
        if (
            not full
            and c.get("mode") != "owners"
            and not self._wanted_owners
            and kept is not None
            and kept.fresh(self.store.now, self.settings.owners_max_age)
        ):
            yield self._done(ObjectType.OWNER, run)
            return
        phases = [False, True]
        if c.get("mode") == "owners":
            phases = phases[phases.index(bool(c.get("archived"))) :]
            after = c.get("after")
        else:
            after = None
        kept_ids, kept_missing = self._kept_owners()
        if self._owner_ids is None:
            self._missing_owners = kept_missing
        # a listing resumed after a stop counts the kept ids as seen (its first pages are)
        seen: set[str] = kept_ids if c.get("mode") == "owners" else set()
        for archived in phases:
            while True:
                kw: dict[str, Any] = {"limit": OWNERS_LIMIT, "archived": archived}
                if after:
                    kw["after"] = after
                resp = self.client.call("owners", "crm.owners.owners_api", "get_page", **kw)
                data = resp.body or {}
                records = []
                fixed: dict[tuple[str, str], list[str]] = defaultdict(list)
                for raw in data.get("results") or []:
                    raw, fixes = f.clean_owner(raw)
                    try:
                        record = f.owner_record(raw)
                    except MalformedRecord:
                        self.malformed += 1
                        log.warning("skipping HubSpot owner without id", extra={"crm": "hubspot"})
                        continue
                    for fix in fixes:
                        fixed[fix].append(record.id)
                    records.append(record)
                    seen.add(record.id)
                self._log_fixes("owners", fixed)
                after = ((data.get("paging") or {}).get("next") or {}).get("after")
                yield Page(
                    ObjectType.OWNER,
                    records,
                    {
                        "mode": "owners",
                        "archived": archived,
                        "after": after,
                        "run_start_ms": self._run_start(run),
                    },
                )
                if not after:
                    break
        missing = (self._missing_owners | self._wanted_owners) - seen
        self.store.put(OWNERS_KEY, {"ids": sorted(seen), "missing": sorted(missing)})
        self._owner_ids, self._missing_owners = seen | missing, missing
        self._wanted_owners = set()
        yield self._done(ObjectType.OWNER, run)

    # ------------------------------------------------------------ contact roles

    def _stash_start(self, spec: ObjectMap, run: _Run, *, fresh: bool) -> _Stash | None:
        key = {ObjectType.OPPORTUNITY: "labels", ObjectType.CONTACT: "buyers"}.get(spec.object)
        if key is None:
            return None
        if not fresh:
            self._stash.pop(key, None)
            return None
        stash = _Stash(run.mode, run.since_ms, run.started_at, 0)
        self._stash[key] = stash
        return stash

    def _stash_add(
        self,
        spec: ObjectMap,
        run: _Run,
        stash: _Stash | None,
        chunk: Sequence[Mapping[str, Any]],
        edges: Mapping[str, Mapping[str, Sequence[Edge]]],
    ) -> None:
        if stash is None:
            return
        stash.run_start_ms = self._run_start(run)
        if spec.object is ObjectType.OPPORTUNITY:
            stash.rows.extend(self._label_rows(chunk, edges.get(f.CONTACTS, {}), run.mode))
        else:
            stash.rows.extend(self._buyer_rows(chunk, run.mode))
            if run.mode == "incremental":
                stash.merges.extend(_merges(chunk))

    def _label_rows(
        self, deals: Sequence[Mapping[str, Any]], edges: Mapping[str, Sequence[Edge]], mode: str
    ) -> Iterator[tuple[Any, ...]]:
        """(deal, contact, label, modified_ms, deleted) for every label on every pair."""
        known = self._label_names() if mode == "incremental" and deals else []
        for raw in deals:
            deal = str(raw.get("id"))
            mod = f.modified_at("hs_lastmodifieddate", raw)
            losers = f.merged_losers(raw) if known else []
            for e in edges.get(deal, ()):
                for label in e.labels:
                    yield (deal, e.to_id, label, mod, False)
                for label in known:
                    if label not in e.labels:
                        yield (deal, e.to_id, label, mod, True)
                    # D4: a merged-away deal's rows now live under the survivor's id
                    for loser in losers:
                        yield (loser, e.to_id, label, mod, True)

    def _buyer_rows(
        self, contacts: Sequence[Mapping[str, Any]], mode: str
    ) -> Iterator[tuple[Any, ...]]:
        """(contact, value, modified, deleted) per hs_buying_role value (and, incrementally, per
        option the contact no longer has)."""
        options = self._buying_role_options() if mode == "incremental" else []
        for raw in contacts:
            values = f.buying_roles(raw)
            if not values and mode == "full":
                continue
            contact = str(raw.get("id"))
            mod = f.modified_at("lastmodifieddate", raw)
            for v in values:
                yield (contact, v, mod, False)
            for o in options:
                if o not in values:
                    yield (contact, o, mod, True)

    def _take_stash(self, key: str, run: _Run, since_ms: int | None) -> _Stash | None:
        """The deal (labels) or contact (buyers) pull's stash, when it covers this role pull's
        window of that phase: same run, and (incremental) it starts no later than `since_ms`."""
        s = self._stash.pop(key, None)
        if s is None or not s.complete or s.mode != run.mode or s.started_at != run.started_at:
            return None
        if run.mode == "incremental" and (
            s.since_ms is None or since_ms is None or s.since_ms > since_ms
        ):
            return None
        return s

    def _roles(self, cursor: Cursor | None, full: bool, started_at: datetime) -> Iterator[Page]:
        """Contact roles in two phases: deal-contact labels (fed by the deal pull's stash) and
        buying roles (fed by the contact pull's stash), or a walk of their own when no stash
        covers the window. The finished cursor keeps where each phase is (`labels_ms`,
        `buyers_ms`), since the deal and contact pulls end at slightly different instants: with
        one shared mark the later stash would never cover the next run's window, and every
        incremental would search the contacts again."""
        run, c = self._begin(cursor, full, started_at)
        phase = c.get("phase", "labels")
        after_id = c.get("after_id")
        obj = ObjectType.CONTACT_ROLE
        marks: dict[str, int] = {}

        def since(key: str) -> int | None:
            mark = c.get(f"{key}_ms") if run.mode == "incremental" else None
            return int(mark) if mark is not None else run.since_ms

        if phase == "labels":
            stash = self._take_stash("labels", run, since("labels")) if after_id is None else None
            if stash is not None:
                marks["labels"] = stash.run_start_ms
                run.run_start_ms = min(stash.run_start_ms, run.run_start_ms or stash.run_start_ms)
                yield from self._emit(run, stash.rows, f.label_role, "labels")
            else:
                yield from self._walk_labels(run, after_id)
            after_id = None
        merges: list[tuple[str, str]] = []
        stash = self._take_stash("buyers", run, since("buyers")) if after_id is None else None
        if stash is not None:
            marks["buyers"] = stash.run_start_ms
            run.run_start_ms = min(stash.run_start_ms, run.run_start_ms or stash.run_start_ms)
            merges = stash.merges
            yield from self._emit(run, stash.rows, self._buyer, "buyers")
        else:
            yield from self._walk_buyers(run, after_id, merges)
        if merges:
            yield from self._merged_contacts(run, merges)
        own = self._run_start(run)
        labels, buyers = marks.get("labels", own), marks.get("buyers", own)
        yield Page(
            obj,
            [],
            {"modified_ms": min(labels, buyers), "labels_ms": labels, "buyers_ms": buyers},
            done=True,
        )

    def _merged_contacts(self, run: _Run, merges: Sequence[tuple[str, str]]) -> Iterator[Page]:
        """D4 for roles: a contact merge moves the losers' deal associations to the survivor
        without touching the deals, so re-read those deals' labels and retire the losers' rows."""
        options = self._buying_role_options()
        losers: dict[str, list[str]] = defaultdict(list)
        for survivor, loser in merges:
            losers[survivor].append(loser)
        survivors = sorted(losers)
        deals_of = self.read_edges(f.CONTACTS, f.DEALS, survivors)
        deal_ids = sorted({e.to_id for es in deals_of.values() for e in es})
        pairs = self.read_edges(f.DEALS, f.CONTACTS, deal_ids) if deal_ids else {}
        known = self._label_names() if deal_ids else []
        modified = self._modified_dates(self.maps[ObjectType.OPPORTUNITY], deal_ids)
        records: list[CrmRecord] = []
        for deal in deal_ids:
            for e in pairs.get(deal, ()):
                records.extend(
                    f.label_role(deal, e.to_id, label, modified.get(deal)) for label in e.labels
                )
        for survivor in survivors:
            for loser in losers[survivor]:
                records.extend(self._buyer(loser, o, None, deleted=True) for o in options)
                for e in deals_of.get(survivor, ()):
                    records.extend(
                        f.label_role(e.to_id, loser, label, None, deleted=True) for label in known
                    )
        yield Page(ObjectType.CONTACT_ROLE, records, self._cursor(run, phase="merges"))

    def _emit(
        self, run: _Run, rows: list[tuple[Any, ...]], make: Any, phase: str
    ) -> Iterator[Page]:
        for chunk in batched(rows, CHUNK):
            records = [make(*row) for row in chunk]
            yield Page(ObjectType.CONTACT_ROLE, records, self._cursor(run, phase=phase))
        rows.clear()

    def _modified_dates(self, spec: ObjectMap, ids: Sequence[str]) -> dict[str, datetime | None]:
        """Modified dates of records by id (batch read, 100 per call)."""
        return {
            str(raw.get("id")): f.modified_at(spec.modified_property, raw)
            for raw in self._batch_read(spec, [spec.modified_property], ids)
        }

    def _walk_labels(self, run: _Run, after_id: str | None) -> Iterator[Page]:
        spec = self.maps[ObjectType.OPPORTUNITY]
        props = [f.ID_PROPERTY, spec.modified_property]
        for chunk in self._chunks(spec, props, self._filters(spec, run), after_id):
            ids = [str(r.get("id")) for r in chunk]
            edges = self.read_edges(f.DEALS, f.CONTACTS, ids)
            records = [f.label_role(*row) for row in self._label_rows(chunk, edges, run.mode)]
            yield Page(
                ObjectType.CONTACT_ROLE,
                records,
                self._cursor(run, phase="labels", after_id=_last_id(chunk)),
            )

    def _walk_buyers(
        self, run: _Run, after_id: str | None, merges: list[tuple[str, str]]
    ) -> Iterator[Page]:
        spec = self.maps[ObjectType.CONTACT]
        props = [f.ID_PROPERTY, spec.modified_property, f.BUYING_ROLE, f.MERGED_IDS]
        if run.mode == "full":
            filters = [{"propertyName": f.BUYING_ROLE, "operator": "HAS_PROPERTY"}]
        else:
            filters = self._filters(spec, run)
        for chunk in self._chunks(spec, props, filters, after_id):
            records = [self._buyer(*row) for row in self._buyer_rows(chunk, run.mode)]
            if run.mode == "incremental":
                merges.extend(_merges(chunk))
            yield Page(
                ObjectType.CONTACT_ROLE,
                records,
                self._cursor(run, phase="buyers", after_id=_last_id(chunk)),
            )


def _held_bytes(raw: Mapping[str, Any]) -> int:
    """Memory the record's property values hold (the bulk of a big record)."""
    props = raw.get("properties") or {}
    return sum(sys.getsizeof(v) for v in props.values() if isinstance(v, str))


def _int_id(raw: Mapping[str, Any]) -> int:
    try:
        return int(str(raw.get("id")))
    except (TypeError, ValueError):
        return -1


def _last_id(chunk: Sequence[Mapping[str, Any]]) -> str | None:
    """The highest numeric id of a chunk: where a resumed walk continues."""
    last = max((_int_id(r) for r in chunk), default=-1)
    return str(last) if last >= 0 else None


def _merges(raws: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    return [(str(r.get("id")), loser) for r in raws for loser in f.merged_losers(r)]
