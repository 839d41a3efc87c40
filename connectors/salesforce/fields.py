"""Salesforce field names and how each becomes a canonical value: the only place they are spelled.

Per canonical object an `ObjectMap` says which sObject it comes from, which SF
field fills each canonical column (state.model.COLUMNS) through which
converter, the cursor field (SystemModstamp), the row filter (Tasks: only those
carrying crmsync's key) and the fields crmsync owns for write-back
(state.model.OWNED_FIELDS keys -> SF names; defaults from issue 6, overridable
through `Settings.fields`). `object_maps(settings)` builds them from the
configured tier / renewal / exemption / left-company fields and extra fields.

`ObjectMap.resolve(infos)` keeps the fields the org really has (the connector
describes each object once per run); a canonical column whose field is missing
reads as None. `Resolved.to_record(raw)` turns one REST record into a
`CrmRecord`. A value that does not convert (malformed date, number), an
unknown picklist value, a NUL or a lone surrogate in text is a *problem*: the
value becomes None (or is cleaned) and the problem goes back to the caller to
log with the record id only. A record without an Id raises MalformedRecord.

Writes go the other way: `owned_payload` and `task_payload` map canonical keys
to SF fields for sObject Collections; `FIELD_SPECS` describes the custom
fields `crmsync setup` creates.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from enum import Enum
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from crmsync.connectors import convert
from crmsync.connectors.errors import MalformedRecord
from crmsync.state.db import ENCODERS, StoredValues, column_kind, dumps, encode_datetime
from crmsync.state.model import COLUMNS, CrmRecord, ObjectType
from crmsync.state.text import clean_fields, for_crm

if TYPE_CHECKING:
    from crmsync.connectors.salesforce.client import Settings

Converter = Callable[[Any], Any]
Problem = tuple[str, str]  # (SF field, what was wrong) -- never the value (personal data)

ID = "Id"
CURSOR_FIELD = "SystemModstamp"
DELETED_FIELD = "IsDeleted"
MERGED_FIELD = "MasterRecordId"

SOBJECTS: Mapping[ObjectType, str] = {
    ObjectType.OWNER: "User",
    ObjectType.ACCOUNT: "Account",
    ObjectType.CONTACT: "Contact",
    ObjectType.OPPORTUNITY: "Opportunity",
    ObjectType.CONTACT_ROLE: "OpportunityContactRole",
    ObjectType.TASK: "Task",
}

# Owned (written-back) fields: canonical key -> default SF name (issue 6).
DEFAULT_OWNED: Mapping[str, Mapping[str, str]] = {
    "Account": {
        "stakeholders": "Crmsync_Stakeholders__c",
        "engaged": "Crmsync_Engaged__c",
        "roles_covered": "Crmsync_Roles_Covered__c",
        "coverage_score": "Crmsync_Coverage_Score__c",
        "coverage_status": "Crmsync_Coverage_Status__c",
        "hygiene_summary": "Crmsync_Hygiene_Summary__c",
        "signature": "Crmsync_Signature__c",
    },
    "Contact": {
        "status": "Crmsync_Status__c",
        "reason": "Crmsync_Reason__c",
        "signature": "Crmsync_Signature__c",
    },
    "Task": {"key": "Crmsync_Key__c", "signature": "Crmsync_Signature__c"},
}

# Tooling API CustomField metadata per owned key ("exemption" = the exempt field).
FIELD_SPECS: Mapping[str, Mapping[str, Any]] = {
    "stakeholders": {"label": "Crmsync Stakeholders", "type": "Number", "precision": 6, "scale": 0},
    "engaged": {"label": "Crmsync Engaged Contacts", "type": "Number", "precision": 6, "scale": 0},
    "roles_covered": {"label": "Crmsync Roles Covered", "type": "Text", "length": 255},
    "coverage_score": {
        "label": "Crmsync Coverage Score",
        "type": "Number",
        "precision": 3,
        "scale": 0,
    },
    "coverage_status": {"label": "Crmsync Coverage Status", "type": "Text", "length": 20},
    "hygiene_summary": {
        "label": "Crmsync Hygiene Summary",
        "type": "LongTextArea",
        "length": 32768,
        "visibleLines": 5,
    },
    "status": {"label": "Crmsync Status", "type": "Text", "length": 20},
    "reason": {
        "label": "Crmsync Reason",
        "type": "LongTextArea",
        "length": 32768,
        "visibleLines": 3,
    },
    "key": {
        "label": "Crmsync Key",
        "type": "Text",
        "length": 80,
        "externalId": True,
        "unique": True,
        "caseSensitive": True,
    },
    "exemption": {"label": "Crmsync Exempt", "type": "Text", "length": 255},
    # Which values crmsync wrote (sync/ownership.py): "v1 field=hash ...", at most ~150 chars.
    "signature": {"label": "Crmsync Signature", "type": "Text", "length": 255},
}

# What a written text field holds at most: FIELD_SPECS' lengths for crmsync's own
# fields, Salesforce's documented ones for Task. crmsync's text stays within them
# (sync/tasks.py); `for_crm` cuts anything longer rather than have the CRM reject the
# whole record (STRING_TOO_LONG), and removes NULs.
TASK_LENGTHS: Mapping[str, int] = {"subject": 255, "body": 32_000}

# Task payload keys (canonical) -> SF Task fields; the key field comes from settings.
TASK_FIELDS: Mapping[str, str] = {
    "subject": "Subject",
    "body": "Description",
    "owner_id": "OwnerId",
    "due_date": "ActivityDate",
    "priority": "Priority",
    "status": "Status",
    "account_id": "WhatId",
    "what_id": "WhatId",
    "contact_id": "WhoId",
    "who_id": "WhoId",
}

# SF field types whose CSV (Bulk 2.0) text must be turned back into JSON types.
BOOLEAN_TYPES = frozenset({"boolean"})
INTEGER_TYPES = frozenset({"int", "long"})
NUMBER_TYPES = frozenset({"double", "currency", "percent"})
DATETIME_TYPES = frozenset({"datetime"})
PICKLIST_TYPES = frozenset({"picklist"})


# ------------------------------------------------------------------ converters


def parse_datetime(value: Any) -> datetime | None:
    """SF datetimes ("...000+0000", "Z", no ms, epoch ms) -> aware UTC. Naive means UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, bool):
        raise ValueError("boolean is not a datetime")
    elif isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        dt = datetime.fromtimestamp(float(value) / 1000.0, tz=UTC)
    elif isinstance(value, str):
        dt = datetime.fromisoformat(value.strip())
    else:
        raise ValueError(f"not a datetime: {type(value).__name__}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def format_datetime(dt: datetime) -> str:
    """The wire form Salesforce REST uses: 2026-05-01T12:34:56.000+0000."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


def soql_datetime(dt: datetime) -> str:
    """A SOQL datetime literal (unquoted, UTC, whole seconds: SOQL rejects fractions)."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_text(value: Any) -> str | None:
    return convert.to_text(value, blank_is_none=False)


def to_bool(value: Any) -> bool | None:
    return convert.to_bool(value, convert.SALESFORCE_BOOLEANS)


def to_date(value: Any) -> date | None:
    return convert.to_date(value, parse_datetime)


to_number = convert.to_number


def to_flag(value: Any) -> bool:
    """A "left the company" field of any type: checkbox, date or text. Set means True."""
    if value is None or value == "" or value is False:
        return False
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "n"):
        return False
    return True


def to_midnight(value: Any) -> datetime | None:
    """A date field read as a moment (LastActivityDate): midnight UTC of that day."""
    d = to_date(value)
    return None if d is None else datetime.combine(d, time(0, 0), tzinfo=UTC)


_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def to_domain(website: Any) -> str | None:
    """Website -> bare domain: "https://www.Acme.com/about" -> "acme.com"."""
    text = to_text(website)
    if text is None:
        return None
    text = text.strip()
    if not _SCHEME.match(text):
        text = "http://" + text
    host = (urlsplit(text).hostname or "").strip(".").lower()
    if host.startswith("www."):
        host = host[4:]
    if not host or " " in host:
        raise ValueError("not a web address")
    return host


# ------------------------------------------------------------------ stored form
#
# A pulled record's values go to the mirror in its stored form (state/db.py StoredValues):
# Salesforce's own datetime text becomes the mirror's in one slice, with no datetime
# object formatted in between. Each function gives exactly what the mirror's encoder
# would give for the canonical converter's value, and raises as that converter does.


def stored_datetime(value: Any) -> str | None:
    """parse_datetime, as the mirror stores it ("2026-05-01T12:34:56.789000Z")."""
    if (
        type(value) is str
        and len(value) == 28
        and value[4] == value[7] == "-"
        and value[10] == "T"
        and value[19] == "."
        and value.endswith("+0000")
    ):  # REST and Bulk 2.0 (typed_value) both send this form
        datetime.fromisoformat(value)  # the same check as parse_datetime's
        return value[:23] + "000Z"
    return encode_datetime(parse_datetime(value))


def stored_midnight(value: Any) -> str | None:
    """to_midnight, as the mirror stores it ("2026-05-01T00:00:00.000000Z")."""
    if type(value) is str and len(value) == 10 and value[4] == "-":
        return date.fromisoformat(value).isoformat() + "T00:00:00.000000Z"
    return encode_datetime(to_midnight(value))


def stored_date(value: Any) -> str | None:
    """to_date, as the mirror stores it ("2026-05-01")."""
    d = to_date(value)
    return None if d is None else d.isoformat()


def stored_bool(value: Any) -> int | None:
    """to_bool, as the mirror stores it (1, 0 or None)."""
    b = to_bool(value)
    return None if b is None else int(b)


def stored_flag(value: Any) -> int:
    return 1 if to_flag(value) else 0


def _stored(convert: Converter, column: str) -> Converter:
    """`convert` for `column`, giving the mirror's stored form of its value."""
    kind = column_kind(column)
    fast = _STORED.get((convert, kind))
    if fast is not None:
        return fast
    encode = ENCODERS[kind]

    def stored(value: Any) -> Any:
        out = convert(value)
        return None if out is None else encode(out)

    return stored


_STORED: dict[tuple[Converter, str], Converter] = {
    (to_text, "text"): to_text,
    (to_domain, "text"): to_domain,
    (parse_datetime, "datetime"): stored_datetime,
    (to_midnight, "datetime"): stored_midnight,
    (to_date, "date"): stored_date,
    (to_bool, "bool"): stored_bool,
    (to_flag, "bool"): stored_flag,
    (to_number, "real"): to_number,
}


# ------------------------------------------------------------------ describe


@dataclass(frozen=True)
class FieldInfo:
    """What describe says about one field."""

    name: str
    type: str
    picklist: frozenset[str] | None = None  # values of a picklist field
    updateable: bool = True  # false when field-level security grants read only
    external_id: bool = False  # an External ID: collections upsert can key on it
    length: int = 0  # characters a text field holds (describe "length")
    custom: bool = False


def field_infos(describe: Mapping[str, Any]) -> dict[str, FieldInfo]:
    """describe() body -> FieldInfo by lower-case field name."""
    out: dict[str, FieldInfo] = {}
    for f in describe.get("fields") or ():
        name = str(f.get("name") or "")
        if not name:
            continue
        ftype = str(f.get("type") or "string")
        values = None
        if ftype in PICKLIST_TYPES:
            values = frozenset(
                str(p.get("value"))
                for p in f.get("picklistValues") or ()
                if p.get("value") is not None
            )
        out[name.lower()] = FieldInfo(
            name=name,
            type=ftype,
            picklist=values,
            updateable=bool(f.get("updateable", True)),
            external_id=bool(f.get("externalId", False)),
            length=int(f.get("length") or 0),
            custom=bool(f.get("custom")),
        )
    return out


# ------------------------------------------------------------------ object maps


@dataclass(frozen=True)
class Column:
    name: str  # canonical column
    sf: str | None  # SF field, None when not configured
    convert: Converter


@dataclass(frozen=True)
class ObjectMap:
    object: ObjectType
    sobject: str
    columns: tuple[Column, ...]
    owned: Mapping[str, str] = field(default_factory=dict)  # canonical owned key -> SF field
    extra: tuple[str, ...] = ()  # extra_fields from settings: kept in raw only
    filter_field: str | None = None  # only rows where this field != null (Task key)
    deleted_field: str | None = DELETED_FIELD
    merged_field: str | None = None
    cursor_field: str = CURSOR_FIELD

    def wanted(self) -> list[str]:
        names = [ID, self.cursor_field]
        names += [f for f in (self.deleted_field, self.merged_field) if f]
        names += [c.sf for c in self.columns if c.sf]
        names += list(self.owned.values()) + list(self.extra)
        if self.filter_field:
            names.append(self.filter_field)
        unique: dict[str, str] = {}
        for name in names:
            unique.setdefault(name.lower(), name)
        return list(unique.values())

    def resolve(self, infos: Mapping[str, FieldInfo]) -> Resolved:
        """Keep the wanted fields the org has (spelled as describe spells them)."""
        select: list[str] = []
        missing: list[str] = []
        quiet = {ID.lower(), (self.deleted_field or "").lower(), (self.merged_field or "").lower()}
        for name in self.wanted():
            info = infos.get(name.lower())
            if info is not None:
                select.append(info.name)
            elif name.lower() not in quiet:
                missing.append(name)
        if ID not in select:
            select.insert(0, ID)
        kept = {n.lower(): infos[n.lower()] for n in select if n.lower() in infos}
        return Resolved(self, tuple(select), tuple(missing), kept)


@dataclass(frozen=True)
class Resolved:
    """An ObjectMap narrowed to the fields the org has."""

    map: ObjectMap
    select: tuple[str, ...]
    missing: tuple[str, ...]
    infos: Mapping[str, FieldInfo]

    @property
    def sobject(self) -> str:
        return self.map.sobject

    def has(self, name: str | None) -> bool:
        return name is not None and name.lower() in {s.lower() for s in self.select}

    def actual(self, name: str | None) -> str | None:
        """The org's spelling of `name` when selected, else None."""
        if name is None:
            return None
        info = self.infos.get(name.lower())
        if info is not None:
            return info.name
        return name if name == ID else None

    @property
    def filter_clause(self) -> str | None:
        """The row filter (Task: crmsync's key set); None when there is none."""
        f = self.actual(self.map.filter_field)
        return f"{f} != null" if f else None

    @property
    def long_text_chars(self) -> int:
        """Characters the selected custom long text areas can hold together (X3): what
        decides Salesforce's own page cap ("If the SOQL statement selects two or more
        custom fields of type long text, the batch size can't be greater than 200
        records", SOQL and SOSL Reference, "Change the Batch Size in Queries")."""
        return sum(
            i.length
            for i in self.infos.values()
            if i.custom and i.type == "textarea" and i.length > 255
        )

    @property
    def filter_missing(self) -> bool:
        """True when the object is filtered by a field the org lacks: pull nothing."""
        return self.map.filter_field is not None and self.actual(self.map.filter_field) is None

    def to_record(self, raw_in: Mapping[str, Any]) -> tuple[CrmRecord, list[Problem]]:
        raw = {k: v for k, v in raw_in.items() if k != "attributes"}
        rid = raw.get(ID)
        if not isinstance(rid, str) or not rid.strip():
            raise MalformedRecord(
                f"Salesforce {self.sobject} record without an Id",
                crm="salesforce",
                operation="pull",
                record_id="",
            )
        # NULs and lone surrogates: cleaned so they store and never go back (state/text.py)
        problems: list[Problem] = clean_fields(raw)
        row: list[Any] = []
        for name, sf, convert_stored, picklist in self._plan:
            if sf is None:
                row.append(None)
                continue
            value = raw.get(sf)
            try:
                row.append(convert_stored(value))
            except (ValueError, TypeError, OverflowError):
                problems.append((sf, f"malformed value for {name}"))
                row.append(None)
                continue
            if picklist and value is not None and value != "" and str(value) not in picklist:
                problems.append((sf, "unknown picklist value"))  # stored as is (X8)
        owned = {}
        for key, name in self.map.owned.items():
            actual = self.actual(name)
            if actual:
                owned[key] = raw.get(actual)
        modified_at = modified_text = None
        cursor = self.actual(self.map.cursor_field)
        if cursor:
            try:
                modified_at = parse_datetime(raw.get(cursor))
                modified_text = stored_datetime(raw.get(cursor))
            except (ValueError, TypeError, OverflowError):
                modified_at = modified_text = None
                problems.append((cursor, "malformed datetime"))
        deleted = False
        dfield = self.actual(self.map.deleted_field)
        if dfield:
            try:
                deleted = bool(to_bool(raw.get(dfield)))
            except ValueError:
                problems.append((dfield, "malformed boolean"))
        merged = self.actual(self.map.merged_field)
        merged_into = to_text(raw.get(merged)) if merged and deleted else None
        values = StoredValues(
            self._columns,
            tuple(row),
            dumps(raw) if raw else None,
            dumps(owned) if owned else None,
            modified_text,
        )
        record = CrmRecord(
            object=self.map.object,
            id=rid,
            modified_at=modified_at,
            deleted=deleted,
            values=values,
            raw=raw,
            owned=owned,
            merged_into=merged_into,
        )
        return record, problems

    @cached_property
    def _columns(self) -> tuple[str, ...]:
        return COLUMNS[self.map.object]

    @cached_property
    def _plan(self) -> tuple[tuple[str, str | None, Converter, frozenset[str] | None], ...]:
        """Per canonical column: its name, the org's field (None: not selected), the
        stored-form converter and the picklist values to check (None: no check)."""
        plan = []
        for col in self.map.columns:
            sf = self.actual(col.sf)
            info = self.infos.get(sf.lower()) if sf else None
            picklist = info.picklist if info is not None and info.picklist else None
            plan.append((col.name, sf, _stored(col.convert, col.name), picklist))
        return tuple(plan)


def owned_names(settings: Settings, sobject: str) -> dict[str, str]:
    """Owned canonical key -> SF field for one sObject, defaults overridden by settings."""
    names = dict(DEFAULT_OWNED.get(sobject, {}))
    overrides = settings.fields.get(sobject) or {}
    for key, value in overrides.items():
        if key not in names:
            raise ValueError(
                f"[salesforce] fields.{sobject}.{key}: unknown owned field; "
                f"known: {', '.join(sorted(names))}"
            )
        names[key] = str(value)
    return names


def task_key_field(settings: Settings) -> str:
    return owned_names(settings, "Task")["key"]


def _extra(settings: Settings, obj: ObjectType) -> tuple[str, ...]:
    extra = settings.extra_fields
    names = list(extra.get(SOBJECTS[obj]) or ()) + list(extra.get(obj.value) or ())
    return tuple(str(n) for n in names)


def object_maps(settings: Settings) -> dict[ObjectType, ObjectMap]:
    """The ObjectMap of every canonical object, for these settings."""
    tier = settings.tier_field or None
    renewal = settings.renewal_date_field or None
    exempt = settings.exempt_field or None
    left = settings.left_company_field or None
    key_field = task_key_field(settings)
    maps = [
        ObjectMap(
            ObjectType.OWNER,
            "User",
            (
                Column("name", "Name", to_text),
                Column("email", "Email", to_text),
                Column("active", "IsActive", to_bool),
            ),
            deleted_field=None,
        ),
        ObjectMap(
            ObjectType.ACCOUNT,
            "Account",
            (
                Column("name", "Name", to_text),
                Column("domain", "Website", to_domain),
                Column("owner_id", "OwnerId", to_text),
                Column("tier", tier, to_text),
                Column("renewal_date", renewal, to_date),
                Column("exemption", exempt, to_text),
            ),
            owned=owned_names(settings, "Account"),
            merged_field=MERGED_FIELD,
        ),
        ObjectMap(
            ObjectType.CONTACT,
            "Contact",
            (
                Column("account_id", "AccountId", to_text),
                Column("first_name", "FirstName", to_text),
                Column("last_name", "LastName", to_text),
                Column("email", "Email", to_text),
                Column("title", "Title", to_text),
                Column("owner_id", "OwnerId", to_text),
                Column("last_activity_at", "LastActivityDate", to_midnight),
                Column("created_at", "CreatedDate", parse_datetime),
                Column("email_bounced", "IsEmailBounced", to_bool),
                Column("bounce_reason", "EmailBouncedReason", to_text),
                Column("bounced_at", "EmailBouncedDate", parse_datetime),
                Column("opted_out", "HasOptedOutOfEmail", to_bool),
                Column("left_company", left, to_flag),
                Column("exemption", exempt, to_text),
            ),
            owned=owned_names(settings, "Contact"),
            merged_field=MERGED_FIELD,
        ),
        ObjectMap(
            ObjectType.OPPORTUNITY,
            "Opportunity",
            (
                Column("account_id", "AccountId", to_text),
                Column("name", "Name", to_text),
                Column("stage", "StageName", to_text),
                Column("is_closed", "IsClosed", to_bool),
                Column("is_won", "IsWon", to_bool),
                Column("close_date", "CloseDate", to_date),
                Column("amount", "Amount", to_number),
            ),
        ),
        ObjectMap(
            ObjectType.CONTACT_ROLE,
            "OpportunityContactRole",
            (
                Column("opportunity_id", "OpportunityId", to_text),
                Column("contact_id", "ContactId", to_text),
                Column("role", "Role", to_text),
                Column("is_primary", "IsPrimary", to_bool),
            ),
        ),
        ObjectMap(
            ObjectType.TASK,
            "Task",
            (
                Column("key", key_field, to_text),
                Column("account_id", "WhatId", to_text),
                Column("contact_id", "WhoId", to_text),
                Column("owner_id", "OwnerId", to_text),
                Column("subject", "Subject", to_text),
                Column("body", "Description", to_text),
                Column("status", "Status", to_text),
                Column("priority", "Priority", to_text),
                Column("due_date", "ActivityDate", to_date),
                Column("is_closed", "IsClosed", to_bool),
            ),
            owned=owned_names(settings, "Task"),
            filter_field=key_field,
        ),
    ]
    out = {m.object: replace(m, extra=_extra(settings, m.object)) for m in maps}
    for obj, m in out.items():  # the canonical model is the contract: fail loudly in tests
        assert tuple(c.name for c in m.columns) == COLUMNS[obj], obj
    return out


# ------------------------------------------------------------------ bulk CSV -> REST types


def typed_value(info: FieldInfo | None, text: str) -> Any:
    """A Bulk 2.0 CSV cell as REST JSON would carry it (CSV has only text; empty is null)."""
    if text == "":
        return None
    if info is None:
        return text
    try:
        if info.type in BOOLEAN_TYPES:
            return to_bool(text)
        if info.type in INTEGER_TYPES:
            return int(text)
        if info.type in NUMBER_TYPES:
            return float(text)
        if info.type in DATETIME_TYPES:
            dt = parse_datetime(text)
            return format_datetime(dt) if dt else None
    except (ValueError, OverflowError):
        return text  # left for to_record to report as malformed
    return text


# ------------------------------------------------------------------ writes


class UnmappedField(ValueError):
    """A write payload key crmsync does not map for this object."""


def _wire(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return "; ".join(str(_wire(v)) for v in value)
    return value


def owned_payload(payload: Mapping[str, Any], owned: Mapping[str, str]) -> dict[str, Any]:
    """Canonical owned keys -> SF fields; any other key is refused (ownership guard)."""
    out: dict[str, Any] = {}
    for key, value in payload.items():
        sf = owned.get(key)
        if sf is None:
            raise UnmappedField(key)
        out[sf] = for_crm(_wire(value), (FIELD_SPECS.get(key) or {}).get("length"))
    return out


_PRIORITY = {
    "high": "High",
    "critical": "High",
    "medium": "Normal",
    "normal": "Normal",
    "low": "Low",
    "info": "Low",
}
_STATUS = {
    "open": "Not Started",
    "not_started": "Not Started",
    "not started": "Not Started",
    "in_progress": "In Progress",
    "in progress": "In Progress",
    "completed": "Completed",
    "complete": "Completed",
    "done": "Completed",
    "closed": "Completed",
    "deferred": "Deferred",
    "waiting": "Waiting on someone else",
}


def task_payload(
    payload: Mapping[str, Any],
    key_field: str,
    key: str,
    owned: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Canonical task payload -> SF Task fields, with crmsync's key for the upsert.

    `owned` maps the Task's other owned keys (the signature) to their SF fields."""
    out: dict[str, Any] = {}
    for name, value in payload.items():
        if name == "key":
            continue
        if owned and name in owned:
            out[owned[name]] = for_crm(_wire(value), (FIELD_SPECS.get(name) or {}).get("length"))
            continue
        sf = TASK_FIELDS.get(name)
        if sf is None:
            raise UnmappedField(name)
        value = for_crm(_wire(value), TASK_LENGTHS.get(name))
        if name == "priority" and isinstance(value, str):
            value = _PRIORITY.get(value.lower(), value)
        elif name == "status" and isinstance(value, str):
            value = _STATUS.get(value.lower(), value)
        out[sf] = value
    out[key_field] = str(payload.get("key") or key)
    return out
