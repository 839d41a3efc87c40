"""The CRM behind the HubSpot emulator's HTTP layer: records, writes, merges, wire shapes.

`Crm` knows HubSpot's data rules but nothing of HTTP: it loads a dataset,
validates and applies writes (raising `HsError`, which the app renders as
HubSpot's JSON error), keeps system properties and associations right, and
turns records into the v3 wire shape. Both the HTTP handlers and the
in-process `HubSpotSandbox` API call it, under `store.lock`.
"""

from __future__ import annotations

import base64
import gc
import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import history as hist
from .associations import Associations
from .properties import DEFAULT_PROPERTIES, SYSTEM, Schema, check_value, infer_type
from .store import OBJECT_TYPES, SINGULAR, Rec, Store, iso, object_type, to_ms


class HsError(Exception):
    """A HubSpot error answer: status plus the standard JSON error body."""

    def __init__(self, status: int, category: str, message: str, headers: Mapping[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.extra = extra
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        extra = dict(self.extra)
        out: dict[str, Any] = {"status": extra.pop("status_override", "error"),
                               "message": self.message, "correlationId": str(uuid.uuid4())}
        if self.category:
            out["category"] = self.category
        out.update(extra)
        return out


def validation_error(errors: list[dict[str, Any]]) -> HsError:
    """Whole-request 400 for invalid property values, as HubSpot words it."""
    text = json.dumps(errors, separators=(",", ":"))
    return HsError(400, "VALIDATION_ERROR", f"Property values were not valid: {text}")


def not_found(rec_id: Any) -> HsError:
    return HsError(404, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.",
                   context={"id": [str(rec_id)]})


def encode_after(n: int) -> str:
    return base64.urlsafe_b64encode(str(n).encode()).decode().rstrip("=")


def decode_after(token: str | None) -> int:
    """The id (or offset) an `after` token stands for; plain digits are accepted too."""
    if not token:
        return 0
    t = str(token).strip()
    if t.isdigit():
        return int(t)
    try:
        raw = base64.urlsafe_b64decode(t + "=" * (-len(t) % 4)).decode()
        return int(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise HsError(400, "VALIDATION_ERROR", f"Invalid after token: {t}") from e


INLINE_CAP = 100  # entries per association type on v3 reads (hubspot-api-python#135)
ARCHIVE_RETENTION_DAYS = 90  # see Crm.expire_archived
PRIMARY_CONTACT_TO_COMPANY = 1  # "Contact to company (Primary)", Associations v4 type ids


class Crm:
    """Records, schemas, associations and owners of one emulated HubSpot account."""

    def __init__(self, store: Store) -> None:
        self.store = store
        now = store.now_ms()
        self.schemas = {o: Schema(o, now) for o in OBJECT_TYPES}
        self.assoc = Associations()
        self.owners: dict[str, dict[str, Any]] = {}
        # Who the HTTP request being answered writes as (app.py sets it per request);
        # in-process writes pass their own source.
        self.writer: hist.Source = hist.integration(False)
        self.validate_owners = True
        self._type_cache: dict[tuple[str, str, str | None], list[int]] = {}
        # The harsher reading of a primary-company change (fault `association_dates_frozen`,
        # set by HubSpotSandbox): associatedcompanyid moves, lastmodifieddate does not.
        self.association_dates_frozen: Callable[[], bool] = lambda: False

    # ------------------------------------------------------------ loading
    def load(self, data: Mapping[str, Any] | None, copy: bool = True) -> None:
        """Add a dataset (its "hubspot" part or the part itself) to the account."""
        if not data:
            return
        hs = data.get("hubspot", data if "salesforce" not in data else {})
        self._type_cache.clear()  # labels may have changed since the last load
        gc_was_on = gc.isenabled()
        gc.disable()  # millions of new dicts: generational GC passes would make loading quadratic
        try:
            self._load(hs, copy)
        finally:
            if gc_was_on:
                gc.enable()
        if sum(len(t) for t in self.store.tables.values()) > 100_000:
            gc.freeze()  # park the big, long-lived store outside GC scans (else each request pauses)

    def _load(self, hs: Mapping[str, Any], copy: bool) -> None:
        st = self.store
        now = st.now_ms()
        for o in hs.get("owners", []) or []:
            self.add_owner(o, now)
        pending: list[tuple[str, int, str, list[Any]]] = []
        loaded: set[str] = set()
        max_id = st.next_id - 1
        max_ms = st.last_ms
        for obj in OBJECT_TYPES:
            table = st.tables[obj]
            schema = self.schemas[obj]
            known = schema.props
            for raw in hs.get(obj, []) or []:
                rec = self._load_record(obj, raw, known, schema, now, copy)
                max_id = max(max_id, rec.id)
                max_ms = max(max_ms, rec.modified)
                if raw.get("archived"):
                    rec.archived_at = to_ms(raw.get("archivedAt")) or rec.modified
                    table.archived[rec.id] = rec
                    continue
                table.live[rec.id] = rec
                if obj == "contacts":
                    st.index_email(rec)
                assoc = raw.get("associations")
                if assoc:
                    for to, items in assoc.items():
                        to_obj = object_type(to)
                        if not to_obj or not items:
                            continue
                        if to_obj in loaded:  # target already here: link now, hold nothing
                            self._link(obj, rec.id, to_obj, items)
                        else:
                            pending.append((obj, rec.id, to_obj, list(items)))
            table.rebuild()
            loaded.add(obj)
        for obj, rid, to_obj, items in pending:
            self._link(obj, rid, to_obj, items)
        st.next_id = max(st.next_id, max_id + 1)
        st.last_ms = max(st.last_ms, max_ms)
        st.version += 1

    def _link(self, obj: str, rid: int, to_obj: str, items: Iterable[Any]) -> None:
        """Dataset associations of one record: [{"id", "label"}] (label null/"primary"/user)."""
        targets = self.store.tables[to_obj].live
        for it in items:
            m = isinstance(it, Mapping)
            target = targets.get(int(it["id"] if m else it))
            if target is None:
                continue  # dangling reference in the dataset: HubSpot would not hold it either
            key = (obj, to_obj, it.get("label") if m else None)
            types = self._type_cache.get(key)
            if types is None:
                types = self._type_cache[key] = self.assoc.type_for(*key)
            self.assoc.add(obj, rid, to_obj, target.id, types)

    def _load_record(self, obj: str, raw: Mapping[str, Any], known: Mapping[str, Any],
                     schema: Schema, now: int, copy: bool) -> Rec:
        src = raw.get("properties") or {}
        props: dict[str, Any] = dict(src) if copy else src  # type: ignore[assignment]
        if not props.keys() <= known.keys():
            for k in props.keys() - known.keys():
                schema.add_custom(k, infer_type(props[k]), now_ms=now)
        for k, v in props.items():
            if v.__class__ is not str and v is not None:
                props[k] = ("true" if v else "false") if isinstance(v, bool) else str(v)
        rid = int(raw.get("id") or props.get("hs_object_id") or self.store.new_id())
        created = to_ms(props.get("createdate") or props.get("hs_createdate")) or now
        mod = to_ms(props.get(schema_mod(obj)) or props.get("hs_lastmodifieddate")
                    or props.get("lastmodifieddate")) or created
        rec = Rec(rid, props, created, mod)
        props["hs_object_id"] = str(rid)
        stamps = ["createdate", "hs_lastmodifieddate"]
        if obj == "tasks":
            stamps.append("hs_createdate")
        if obj == "contacts":
            stamps.append("lastmodifieddate")
        mod_text = props.get(schema_mod(obj)) or iso(mod)
        for k in stamps:
            if not props.get(k):
                props[k] = mod_text if "modified" in k else iso(created)
        return rec

    def add_owner(self, o: Mapping[str, Any], now: int | None = None) -> dict[str, Any]:
        now = self.store.now_ms() if now is None else now
        oid = str(o.get("id") or self.store.new_id())
        owner = {
            "id": oid,
            "email": o.get("email"),
            "firstName": o.get("firstName"),
            "lastName": o.get("lastName"),
            "userId": int(o.get("userId") or oid),
            "userIdIncludingInactive": int(o.get("userIdIncludingInactive") or o.get("userId") or oid),
            "type": o.get("type", "PERSON"),
            "archived": bool(o.get("archived", False)),
            "createdAt": o.get("createdAt") or iso(now),
            "updatedAt": o.get("updatedAt") or iso(now),
            "teams": list(o.get("teams") or []),
        }
        self.owners[oid] = owner
        return owner

    # ------------------------------------------------------------ wire shapes
    def names(self, obj: str, requested: list[str] | None) -> list[str]:
        """Properties a read answers: the requested ones plus HubSpot's always-on three."""
        if not requested:
            return DEFAULT_PROPERTIES[obj]
        always = ["createdate", "hs_object_id", schema_mod(obj)]
        return list(dict.fromkeys([*requested, *always]))

    def wire(self, obj: str, rec: Rec, names: list[str], assoc_to: list[str] | None = None,
             base_url: str = "", history: list[str] | None = None) -> dict[str, Any]:
        props = rec.props
        known = self.schemas[obj].props
        out: dict[str, Any] = {}
        for n in names:
            if n in _COMPUTED and obj in _COMPUTED[n]:
                out[n] = self._computed(obj, rec, n)
            elif n in props:
                out[n] = props[n]
            elif n in known:
                out[n] = None
        d: dict[str, Any] = {"id": str(rec.id), "properties": out, "createdAt": iso(rec.created),
                             "updatedAt": iso(rec.modified), "archived": rec.archived_at is not None}
        if rec.archived_at is not None:
            d["archivedAt"] = iso(rec.archived_at)
        if history:  # every write's source, newest first (history.py)
            d["propertiesWithHistory"] = {
                n: hist.entries(rec.history, n, props.get(n), d["createdAt"])
                for n in history if n in props or n in known}
        if assoc_to:
            a: dict[str, Any] = {}
            for to in assoc_to:
                entries = self.v3_associations(obj, rec.id, to)
                if entries:
                    block: dict[str, Any] = {"results": entries[:INLINE_CAP]}
                    if len(entries) > INLINE_CAP:
                        after = encode_after(INLINE_CAP)
                        block["paging"] = {"next": {"after": after, "link": (
                            f"{base_url}/crm/v3/objects/{obj}/{rec.id}/associations/{to}?after={after}")}}
                    a[to] = block
            if a:
                d["associations"] = a
        return d

    def v3_associations(self, obj: str, rec_id: int, to: str) -> list[dict[str, str]]:
        """The flattened (id, type) list of v3 reads: one entry per association type."""
        out = []
        has_primary = (obj, to) in self.assoc.primaries
        types = self.assoc.types
        for tid, tys in self.assoc.targets(obj, rec_id, to):
            for t in tys:
                out.append({"id": str(tid), "type": types[t].v3_name(has_primary)})
        return out

    def _computed(self, obj: str, rec: Rec, name: str) -> str | None:
        if name == "associatedcompanyid":
            for cid, types in self.assoc.targets("contacts", rec.id, "companies"):
                if 1 in types:
                    return str(cid)
            return rec.props.get(name)
        if name == "num_associated_contacts":
            return str(self.assoc.count("companies", rec.id, "contacts"))
        return rec.props.get(name)

    def owner_ids(self) -> set[str] | None:
        if not self.validate_owners or not self.owners:
            return None
        return set(self.owners)

    # ------------------------------------------------------------ validation
    def check(self, obj: str, props: Mapping[str, Any] | None, *, max_chars: int | None = None
              ) -> tuple[dict[str, str], list[dict[str, Any]]]:
        """Normalised values and HubSpot's per-property error dicts for one input; text longer
        than `max_chars` is refused (API writes, app.py MAX_TEXT_CHARS)."""
        known = self.schemas[obj].props
        owners = self.owner_ids()
        clean: dict[str, str] = {}
        errors: list[dict[str, Any]] = []
        for k, v in (props or {}).items():
            if k in SYSTEM:
                continue
            val, err = check_value(known.get(k), k, v, owners, max_chars=max_chars)
            if err:
                errors.append(err)
            else:
                clean[k] = val  # type: ignore[assignment]
        return clean, errors

    def check_associations(self, obj: str, items: Iterable[Mapping[str, Any]] | None
                           ) -> list[tuple[str, int, list[int]]]:
        """Inline create associations -> (to type, to id, type ids); 400 on a bad one."""
        out: list[tuple[str, int, list[int]]] = []
        for it in items or []:
            to_id = str((it.get("to") or {}).get("id", ""))
            tids: dict[str, list[int]] = {}
            for t in it.get("types") or []:
                tid = int(t.get("associationTypeId", 0))
                at = self.assoc.types.get(tid)
                if at is None or at.from_obj != obj:
                    raise HsError(400, "VALIDATION_ERROR",
                                  f"{tid} is not a valid association type id for {SINGULAR[obj]}",
                                  subCategory="crm.associations.INVALID_ASSOCIATION_TYPE")
                tids.setdefault(at.to_obj, []).append(tid)
            for to_obj, ids in tids.items():
                if not to_id.isdigit() or self.store.get(to_obj, int(to_id)) is None:
                    raise HsError(400, "VALIDATION_ERROR",
                                  f"One or more associations are invalid: {SINGULAR[to_obj]} "
                                  f"{to_id} does not exist",
                                  subCategory="crm.associations.INVALID_OBJECT_IDS")
                out.append((to_obj, self.store.resolve(to_obj, int(to_id)), ids))
        return out

    def check_unique(self, obj: str, items: list[tuple[int | None, dict[str, str]]]) -> None:
        """409 CONFLICT when a contact email is taken or repeated within one request."""
        if obj != "contacts":
            return
        seen: dict[str, int | None] = {}
        for rid, props in items:
            email = props.get("email")
            if not email:
                continue
            k = email.strip().casefold()
            owner = self.store.find_email(email)
            if (owner is not None and owner != rid) or (k in seen and seen[k] != rid):
                existing = owner if owner is not None else ""
                raise HsError(409, "CONFLICT", f"Contact already exists. Existing ID: {existing}")
            seen[k] = rid

    def check_required(self, obj: str, props: Mapping[str, str]) -> None:
        if obj == "tasks" and not props.get("hs_timestamp"):
            raise validation_error([{"isValid": False, "message": "hs_timestamp is required",
                                     "error": "REQUIRED_FIELD", "name": "hs_timestamp",
                                     "localizedErrorMessage": "hs_timestamp is required"}])

    # ------------------------------------------------------------ writes (validated input)
    def create(self, obj: str, props: dict[str, str], assoc: list[tuple[str, int, list[int]]] | None = None,
               created_ms: int | None = None, source: hist.Source | None = None) -> Rec:
        st = self.store
        ms = st.tick()
        rec = Rec(st.new_id(), dict(props), created_ms or ms, ms)
        self._derive(obj, rec.props)
        rec.history = {}
        hist.record(rec.history, {}, props, iso(ms), source or self.writer, iso(rec.created))
        st.stamp(obj, rec, ms, created=True)
        st.tables[obj].add(rec)
        if obj == "contacts":
            st.index_email(rec)
        for to_obj, to_id, tids in assoc or []:
            self.assoc.add(obj, rec.id, to_obj, to_id, tids)
        if obj == "contacts" and assoc:
            self._sync_primary(rec.id, stamp=False)  # part of the create itself
        return rec

    # ------------------------------------------------------------ associations (writes)
    def associate(self, a: str, a_id: int, b: str, b_id: int, type_ids: list[int]) -> list[int]:
        """Add association types between two records (a->b ids); returns the types added.

        A contact's primary company is its `associatedcompanyid` ("HubSpot defined ID of a
        contact's primary associated company"), and `lastmodifieddate` is "the date any
        property on this contact was modified" (live-portal property export,
        api-facts §3). So a write that changes the primary company (v4 "supports changing which company
        is considered the primary", Associations v4 guide) sets the property and moves the
        contact's modified dates, unless the `association_dates_frozen` fault asks for the
        harsher reading (the dates stay; unconfirmed either way on a real portal). Other
        association writes (unlabeled, labels, deal-contact) change no property of either
        record and move no date (airbytehq/airbyte#27199: association-only changes are not
        re-synced incrementally).
        """
        contact = _contact_of(a, a_id, b, b_id)
        before = self.primary_company(contact) if contact is not None else None
        added = self.assoc.add(a, a_id, b, b_id, type_ids)
        if contact is not None and self.primary_company(contact) != before:
            self._sync_primary(contact, stamp=True)
        return added

    def dissociate(self, a: str, a_id: int, b: str, b_id: int, type_ids: list[int] | None = None) -> None:
        """Remove all association types (or `type_ids`) between two records; see `associate`."""
        contact = _contact_of(a, a_id, b, b_id)
        before = self.primary_company(contact) if contact is not None else None
        self.assoc.remove(a, a_id, b, b_id, type_ids)
        if contact is not None and self.primary_company(contact) != before:
            self._sync_primary(contact, stamp=True)

    def primary_company(self, contact_id: int) -> int | None:
        for cid, types in self.assoc.targets("contacts", contact_id, "companies"):
            if PRIMARY_CONTACT_TO_COMPANY in types:
                return cid
        return None

    def _sync_primary(self, contact_id: int, *, stamp: bool) -> None:
        """Store the contact's primary company as associatedcompanyid; a change is a write."""
        rec = self.store.tables["contacts"].live.get(contact_id)
        if rec is None:
            return
        primary = self.primary_company(contact_id)
        new = None if primary is None else str(primary)
        if rec.props.get("associatedcompanyid") == new:
            return
        if new is None:
            rec.props.pop("associatedcompanyid", None)
        else:
            rec.props["associatedcompanyid"] = new
        if stamp and not self.association_dates_frozen():
            old_ms = rec.modified
            self.store.stamp("contacts", rec, self.store.tick())
            self.store.tables["contacts"].touched(rec, old_ms)
        else:
            self.store.version += 1  # search results are cached per data version

    def update(self, obj: str, rec: Rec, props: Mapping[str, str],
               source: hist.Source | None = None) -> Rec:
        st = self.store
        old_email, old_ms = rec.props.get("email"), rec.modified
        before = {k: rec.props.get(k) for k in props}
        rec.props.update(props)
        self._derive(obj, rec.props)
        ms = st.tick()
        if rec.history is None:
            rec.history = {}
        hist.record(rec.history, before, props, iso(ms), source or self.writer, iso(rec.created))
        st.stamp(obj, rec, ms)
        st.tables[obj].touched(rec, old_ms)
        if obj == "contacts" and "email" in props:
            st.index_email(rec, old_email)
        return rec

    def archive(self, obj: str, rec: Rec) -> None:
        st = self.store
        st.tables[obj].archive(rec, st.tick())
        if obj == "contacts":
            st.index_email(Rec(rec.id, {}, 0, 0), rec.props.get("email"))
        self.assoc.drop_record(obj, rec.id)

    def purge(self, obj: str, rec: Rec) -> None:
        """Delete for good: a GDPR delete, an archived record past its retention, or a
        permanent delete from the recycling bin. The record leaves the live and the
        archived listings and every association; its id answers 404 from then on. Only
        its absence from a complete id listing shows it (api-facts §6)."""
        st = self.store
        table = st.tables[obj]
        if table.remove(rec.id) is not None and obj == "contacts":
            st.index_email(Rec(rec.id, {}, 0, 0), rec.props.get("email"))
        table.forget_archived(rec.id)
        self.assoc.drop_record(obj, rec.id)
        st.version += 1

    def expire_archived(self, obj: str) -> None:
        """Purge records archived longer ago than the archive keeps them (by the store clock).

        "Deleted contacts can be restored within 90 days of deletion" (HubSpot API reference,
        "Archive a contact"; companies alike; estuary/connectors#3615: the API lists records
        archived "in the past 90 days"). Whether one is still listed after that is
        unconfirmed: the harsher reading is that it is gone for good (api-facts §6).
        """
        cutoff = self.store.now_ms() - ARCHIVE_RETENTION_DAYS * 86_400_000
        for rec in self.store.tables[obj].archived_before(cutoff):
            self.purge(obj, rec)

    def merge(self, obj: str, primary: Rec, other: Rec) -> Rec:
        """HubSpot's merge since 2025: a new record id; both old ids resolve to it."""
        st = self.store
        props = {k: v for k, v in other.props.items() if v not in (None, "")}
        props.update({k: v for k, v in primary.props.items() if v not in (None, "")})
        merged_ids = [*filter(None, (primary.props.get("hs_merged_object_ids") or "").split(";")),
                      *filter(None, (other.props.get("hs_merged_object_ids") or "").split(";")),
                      str(primary.id), str(other.id)]
        props["hs_merged_object_ids"] = ";".join(dict.fromkeys(merged_ids))
        for old in (other, primary):
            st.tables[obj].remove(old.id)
            if obj == "contacts":
                st.index_email(Rec(old.id, {}, 0, 0), old.props.get("email"))
        ms = st.tick()
        rec = Rec(st.new_id(), props, min(primary.created, other.created), ms)
        st.stamp(obj, rec, ms)
        rec.props["createdate"] = iso(rec.created)
        st.tables[obj].add(rec)
        if obj == "contacts":
            st.index_email(rec)
        for old in (other, primary):  # primary last: its primary company wins
            self.assoc.move_record(obj, old.id, rec.id)
            st.merged[obj][old.id] = rec.id
        return rec

    def _derive(self, obj: str, props: dict[str, Any]) -> None:
        """Calculated properties HubSpot keeps in step with their inputs."""
        if obj == "deals" and props.get("dealstage"):
            stage = props["dealstage"]
            props["hs_is_closed"] = "true" if stage in ("closedwon", "closedlost") else "false"
            props["hs_is_closed_won"] = "true" if stage == "closedwon" else "false"


_COMPUTED = {"associatedcompanyid": {"contacts"}, "num_associated_contacts": {"companies"}}


def _contact_of(a: str, a_id: int, b: str, b_id: int) -> int | None:
    """The contact of a contact-company pair (either direction), else None."""
    if (a, b) == ("contacts", "companies"):
        return a_id
    if (a, b) == ("companies", "contacts"):
        return b_id
    return None


def schema_mod(obj: str) -> str:
    return "lastmodifieddate" if obj == "contacts" else "hs_lastmodifieddate"
