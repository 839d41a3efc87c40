"""HubSpot property names and how each becomes a canonical value: the only place they are spelled.

Per canonical object an `ObjectMap` names the HubSpot object type, the
modified-date property search filters on, the columns (canonical name ->
properties tried in order + converter), the properties crmsync owns for
write-back (state.model.OWNED_FIELDS keys -> HubSpot names), the association
types to read, and any extra properties a derived value needs.
`object_maps(settings)` builds them from the configured tier / renewal /
exemption / left-company properties and `extra_properties`.

`ObjectMap.properties(known)` is the property list to request, limited to the
names the portal's schema has (the connector checks the properties API once
per object; a missing name is left out with one warning). A property that
vanished from the schema but still comes back on records is kept in `raw`
(X6).

`clean_record(raw)` first removes NULs and lone surrogates from the values
(logged by property and record id). `to_record(spec, raw, edges)` maps one wire record (`{"id", "properties",
"createdAt", "updatedAt", "archived"}`) plus its association edges to a
`CrmRecord`. A value that does not convert (a malformed date, X8) becomes None
and is named in the returned problem list; a record without an id raises
MalformedRecord. Timestamps accept ISO 8601 with `Z`, `+0000` or `+00:00`,
with or without milliseconds, date-only strings and epoch milliseconds (P7),
and come out as aware UTC datetimes.

Writes go the other way: `account_properties`, `contact_properties`,
`task_properties` map canonical payload keys to HubSpot property values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from crmsync.connectors import convert
from crmsync.connectors.errors import MalformedRecord
from crmsync.state.model import CrmRecord, ObjectType
from crmsync.state.text import clean_fields, for_crm

if TYPE_CHECKING:  # client.py imports this module
    from .client import Settings

# ---------------------------------------------------------------- HubSpot names

CONTACTS, COMPANIES, DEALS, TASKS = "contacts", "companies", "deals", "tasks"
ID_PROPERTY = "hs_object_id"
MERGED_IDS = "hs_merged_object_ids"
BUYING_ROLE = "hs_buying_role"
TASK_KEY = "crmsync_key"
SIGNATURE = "crmsync_signature"  # which values crmsync wrote (sync/ownership.py)
GROUP = "crmsync"

# The Salesforce ids HubSpot's native Salesforce integration keeps on synced records
# (api-facts §24; property group `salesforceinformation`). Read when the portal has them
# (a portal without the integration lacks them: no warning), kept in `raw`; state/identity.py
# links records across the two mirrors by them.
SALESFORCE_CONTACT_ID = "salesforcecontactid"
SALESFORCE_ACCOUNT_ID = "salesforceaccountid"
SALESFORCE_LAST_SYNC = "salesforcelastsynctime"

# HUBSPOT_DEFINED association type ids (api-facts §22; HubSpot's Associations v4
# guide, "Association type ID values": 1 "Contact to company (Primary)", 2 "Company to
# contact (Primary)", 5 "Deal to company (Primary)"). Only type ids identify the primary:
# "labels should not be relied on for integrations" (developers.hubspot.com changelog,
# "Changes to primary labels for HubSpot-defined association labels", 2024).
PRIMARY_TYPE_IDS = {(CONTACTS, COMPANIES): 1, (COMPANIES, CONTACTS): 2, (DEALS, COMPANIES): 5}
TASK_TO_CONTACT = 204
TASK_TO_COMPANY = 192
USER_DEFINED = "USER_DEFINED"
HUBSPOT_DEFINED = "HUBSPOT_DEFINED"

# hs_buying_role's nine options (a multi-select; api-facts §4) -> the role names the rules
# know (docs/design.md "Rules": Champion, Economic Buyer, Executive Sponsor, Decision Maker),
# the others in HubSpot's own labels. The default of [hubspot] buying_roles.
BUYING_ROLES = {
    "BLOCKER": "Blocker",
    "BUDGET_HOLDER": "Economic Buyer",
    "CHAMPION": "Champion",
    "DECISION_MAKER": "Decision Maker",
    "END_USER": "End User",
    "EXECUTIVE_SPONSOR": "Executive Sponsor",
    "INFLUENCER": "Influencer",
    "LEGAL_AND_COMPLIANCE": "Legal & Compliance",
    "OTHER": "Other",
}
BOUNCE_ENUM = "hs_email_hard_bounce_reason_enum"
BOUNCE_TEXT = "hs_email_hard_bounce_reason"

# canonical owned key -> HubSpot property (issue 6 defaults)
OWNED_ACCOUNT = {
    "stakeholders": "crmsync_stakeholders",
    "engaged": "crmsync_engaged",
    "roles_covered": "crmsync_roles_covered",
    "coverage_score": "crmsync_coverage_score",
    "coverage_status": "crmsync_coverage_status",
    "hygiene_summary": "crmsync_hygiene_summary",
    "signature": SIGNATURE,
}
OWNED_CONTACT = {"status": "crmsync_status", "reason": "crmsync_reason", "signature": SIGNATURE}
OWNED_TASK = {"key": TASK_KEY, "signature": SIGNATURE}

# task payload (canonical, from sync/plan.py) -> HubSpot task property
TASK_PROPERTIES = {
    "subject": "hs_task_subject",
    "body": "hs_task_body",
    "status": "hs_task_status",
    "priority": "hs_task_priority",
    "due_date": "hs_timestamp",
    "owner_id": "hubspot_owner_id",
    "key": TASK_KEY,
    "signature": SIGNATURE,
    "type": "hs_task_type",
}
TASK_STATUS = {
    "open": "NOT_STARTED",
    "not_started": "NOT_STARTED",
    "completed": "COMPLETED",
    "complete": "COMPLETED",
    "closed": "COMPLETED",
    "done": "COMPLETED",
}
TASK_PRIORITY = {
    "low": "LOW",
    "medium": "MEDIUM",
    "normal": "MEDIUM",
    "high": "HIGH",
    "critical": "HIGH",
}
TASK_TYPE_TODO = "TODO"
TASK_COMPLETED = "COMPLETED"

# The longest value a HubSpot text property holds (string / textarea: 65,536
# characters). crmsync's text stays far below (sync/tasks.py); `for_crm` cuts
# anything longer rather than have HubSpot reject the whole write, and removes NULs.
TEXT_MAX = 65_536


# ---------------------------------------------------------------- converters


_TZ_NO_COLON = re.compile(r"([+-]\d{2})(\d{2})$")


def parse_datetime(value: Any) -> datetime | None:
    """ISO 8601 (Z, +0000, +00:00, with/without ms), date-only or epoch ms -> aware UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000.0, UTC)
    s = str(value).strip()
    if re.fullmatch(r"-?\d{10,}", s):
        return datetime.fromtimestamp(int(s) / 1000.0, UTC)
    if len(s) == 10:
        d = date.fromisoformat(s)
        return datetime(d.year, d.month, d.day, tzinfo=UTC)
    t = s.replace("Z", "+00:00").replace("z", "+00:00")
    t = _TZ_NO_COLON.sub(r"\1:\2", t)
    dt = datetime.fromisoformat(t)
    return dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)


def to_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def to_text(value: Any) -> str | None:
    return convert.to_text(value, blank_is_none=True)


def to_bool(value: Any) -> bool | None:
    return convert.to_bool(value, convert.HUBSPOT_BOOLEANS)


def to_date(value: Any) -> date | None:
    return convert.to_date(value, parse_datetime)


to_number = convert.to_number


def parse_number(value: Any) -> float | int | None:
    if value is None or value == "":
        return None
    f = float(str(value).strip())
    return int(f) if f.is_integer() and abs(f) < 2**53 else f


def ms_string(value: datetime | date) -> str:
    """A date or datetime as the epoch-ms string HubSpot accepts for datetime properties."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    return str(to_ms(value if value.tzinfo else value.replace(tzinfo=UTC)))


Converter = Callable[[Any], Any]


# ---------------------------------------------------------------- object maps


@dataclass(frozen=True)
class Column:
    """A canonical column filled from the first of `properties` that has a value."""

    name: str
    properties: tuple[str, ...]
    convert: Converter = to_text


@dataclass(frozen=True)
class ObjectMap:
    object: ObjectType
    hs_type: str  # HubSpot object type in paths ("contacts")
    modified_property: str
    columns: tuple[Column, ...]
    owned: Mapping[str, str] = field(default_factory=dict)  # canonical key -> property
    owned_convert: Mapping[str, Converter] = field(default_factory=dict)
    extra: tuple[str, ...] = ()  # properties read for derived values / raw
    associations: tuple[str, ...] = ()  # to-object types read via v4
    required_filter: str | None = None  # only records with this property set (tasks)
    # read when the portal's schema has them, left out without a warning when not
    optional: tuple[str, ...] = ()

    def wanted(self) -> list[str]:
        """Every property this spec would like, in a stable order, no duplicates."""
        names: list[str] = [ID_PROPERTY, self.modified_property, "createdate"]
        for c in self.columns:
            names.extend(c.properties)
        names.extend(self.owned.values())
        names.extend(self.extra)
        names.extend(self.optional)
        seen: set[str] = set()
        return [n for n in names if n and not (n in seen or seen.add(n))]  # type: ignore[func-returns-value]

    def properties(self, known: Iterable[str] | None) -> tuple[list[str], list[str]]:
        """(properties to request, wanted ones the schema lacks)."""
        wanted = self.wanted()
        if known is None:
            return wanted, []
        k = set(known)
        always = {ID_PROPERTY, self.modified_property, "createdate"}
        optional = set(self.optional)
        return [n for n in wanted if n in k or n in always], [
            n for n in wanted if n not in k and n not in always and n not in optional
        ]


def _custom(name: str) -> tuple[str, ...]:
    return (name,) if name else ()


def object_maps(settings: Settings) -> dict[ObjectType, ObjectMap]:
    """The object maps for `settings` ([hubspot] in sync.toml)."""
    extra = {k: tuple(v) for k, v in settings.extra_properties.items()}
    exempt = _custom(settings.exempt_field)
    account = ObjectMap(
        object=ObjectType.ACCOUNT,
        hs_type=COMPANIES,
        modified_property="hs_lastmodifieddate",
        columns=(
            Column("name", ("name",)),
            Column("domain", ("domain",)),
            Column("owner_id", ("hubspot_owner_id",)),
            Column("tier", _custom(settings.tier_field)),
            Column("renewal_date", _custom(settings.renewal_date_field), to_date),
            Column("exemption", exempt),
        ),
        owned=OWNED_ACCOUNT,
        owned_convert={
            "stakeholders": parse_number,
            "engaged": parse_number,
            "coverage_score": parse_number,
        },
        extra=(MERGED_IDS, *extra.get(COMPANIES, ())),
        optional=(SALESFORCE_ACCOUNT_ID, SALESFORCE_LAST_SYNC),
    )
    contact = ObjectMap(
        object=ObjectType.CONTACT,
        hs_type=CONTACTS,
        modified_property="lastmodifieddate",
        columns=(
            Column("first_name", ("firstname",)),
            Column("last_name", ("lastname",)),
            Column("email", ("email",)),
            Column("title", ("jobtitle",)),
            Column("owner_id", ("hubspot_owner_id",)),
            Column(
                "last_activity_at",
                ("notes_last_contacted", "hs_last_sales_activity_timestamp"),
                parse_datetime,
            ),
            Column("created_at", ("createdate",), parse_datetime),
            Column("opted_out", ("hs_email_optout",), to_bool),
            Column("left_company", _custom(settings.left_company_field), to_bool),
            Column("exemption", exempt),
        ),
        owned=OWNED_CONTACT,
        extra=(
            "associatedcompanyid",
            BOUNCE_ENUM,
            BOUNCE_TEXT,
            "hs_email_bad_address",
            BUYING_ROLE,
            MERGED_IDS,
            *extra.get(CONTACTS, ()),
        ),
        optional=(SALESFORCE_CONTACT_ID, SALESFORCE_ACCOUNT_ID, SALESFORCE_LAST_SYNC),
        associations=(COMPANIES,),
    )
    opportunity = ObjectMap(
        object=ObjectType.OPPORTUNITY,
        hs_type=DEALS,
        modified_property="hs_lastmodifieddate",
        columns=(
            Column("name", ("dealname",)),
            Column("stage", ("dealstage",)),
            Column("is_closed", ("hs_is_closed",), to_bool),
            Column("is_won", ("hs_is_closed_won",), to_bool),
            Column("close_date", ("closedate",), to_date),
            Column("amount", ("amount",), to_number),
        ),
        extra=("pipeline", "hubspot_owner_id", MERGED_IDS, *extra.get(DEALS, ())),
        associations=(COMPANIES, CONTACTS),
    )
    task = ObjectMap(
        object=ObjectType.TASK,
        hs_type=TASKS,
        modified_property="hs_lastmodifieddate",
        columns=(
            Column("key", (TASK_KEY,)),
            Column("owner_id", ("hubspot_owner_id",)),
            Column("subject", ("hs_task_subject",)),
            Column("body", ("hs_task_body",)),
            Column("status", ("hs_task_status",)),
            Column("priority", ("hs_task_priority",)),
            Column("due_date", ("hs_timestamp",), to_date),
        ),
        owned=OWNED_TASK,
        extra=("hs_task_type", "hs_task_completion_date", *extra.get(TASKS, ())),
        associations=(CONTACTS, COMPANIES),
        required_filter=TASK_KEY,
    )
    return {s.object: s for s in (account, contact, opportunity, task)}


# ---------------------------------------------------------------- associations


@dataclass(frozen=True)
class Edge:
    """One associated record: its id and the association types on the pair."""

    to_id: str
    type_ids: tuple[int, ...] = ()
    labels: tuple[str, ...] = ()  # USER_DEFINED labels only
    primary: bool = False

    def to_raw(self) -> dict[str, Any]:
        return {
            "id": self.to_id,
            "typeIds": list(self.type_ids),
            "labels": list(self.labels),
            "primary": self.primary,
        }


def edge_from_v4(item: Mapping[str, Any], from_type: str, to_type: str) -> Edge:
    """An Edge from a v4 batch/basic read `to` item."""
    types = item.get("associationTypes") or []
    primary_id = PRIMARY_TYPE_IDS.get((from_type, to_type))
    type_ids: list[int] = []
    labels: list[str] = []
    primary = False
    for t in types:
        tid = t.get("typeId")
        if tid is not None:
            type_ids.append(int(tid))
        label = t.get("label")
        if t.get("category") == USER_DEFINED and label:
            labels.append(str(label))
        if (primary_id is not None and tid is not None and int(tid) == primary_id) or (
            t.get("category") == HUBSPOT_DEFINED and str(label or "").lower() == "primary"
        ):
            primary = True
    return Edge(str(item.get("toObjectId")), tuple(type_ids), tuple(labels), primary)


def edge_from_v3(item: Mapping[str, Any], from_type: str, to_type: str) -> Edge:
    """An Edge from a v3 inline association (`{"id", "type": "contact_to_company"}`)."""
    kind = str(item.get("type") or "")
    singular = {CONTACTS: "contact", COMPANIES: "company", DEALS: "deal", TASKS: "task"}
    primary = (from_type, to_type) in PRIMARY_TYPE_IDS and kind == (
        f"{singular[from_type]}_to_{singular[to_type]}"
    )
    return Edge(str(item.get("id")), (), (), primary)


def merge_edges(edges: Sequence[Edge]) -> list[Edge]:
    """One Edge per associated id (v3 lists a pair once per type)."""
    by_id: dict[str, Edge] = {}
    for e in edges:
        old = by_id.get(e.to_id)
        if old is None:
            by_id[e.to_id] = e
        else:
            by_id[e.to_id] = Edge(
                e.to_id,
                tuple(dict.fromkeys(old.type_ids + e.type_ids)),
                tuple(dict.fromkeys(old.labels + e.labels)),
                old.primary or e.primary,
            )
    return list(by_id.values())


def pick_account(edges: Sequence[Edge], fallback: Any = None) -> str | None:
    """The primary company, else `fallback` (associatedcompanyid), else the first."""
    for e in edges:
        if e.primary:
            return e.to_id
    fb = to_text(fallback)
    if fb:
        return fb.split(".")[0]  # number properties may come back as "123.0"
    return edges[0].to_id if edges else None


# ---------------------------------------------------------------- records


def _first(props: Mapping[str, Any], names: Sequence[str]) -> tuple[str | None, Any]:
    for n in names:
        v = props.get(n)
        if v is not None and v != "":
            return n, v
    return (names[0] if names else None), None


def record_id(raw: Mapping[str, Any]) -> str:
    rid = raw.get("id") if isinstance(raw, Mapping) else None
    if rid is None or str(rid).strip() == "":
        props = raw.get("properties") if isinstance(raw, Mapping) else None
        rid = (props or {}).get(ID_PROPERTY) if isinstance(props, Mapping) else None
    if rid is None or str(rid).strip() == "":
        raise MalformedRecord("HubSpot record without an id", crm="hubspot", record_id="")
    return str(rid)


def modified_at(spec_modified: str, raw: Mapping[str, Any]) -> datetime | None:
    props = raw.get("properties") or {}
    for v in (props.get(spec_modified), props.get("hs_lastmodifieddate"), raw.get("updatedAt")):
        try:
            dt = parse_datetime(v)
        except (TypeError, ValueError):
            continue
        if dt is not None:
            return dt
    return None


def clean_record(raw: Mapping[str, Any]) -> tuple[Mapping[str, Any], list[tuple[str, str]]]:
    """The wire record with NULs removed and lone surrogates replaced in its property
    values, as the Salesforce connector does (state.text.clean_fields): they would not
    store, and crmsync must never write them back. Returns (record, [(property, problem)])
    for the caller to log by record id; the values are never named."""
    props = raw.get("properties") if isinstance(raw, Mapping) else None
    if not isinstance(props, Mapping):
        return raw, []
    cleaned = dict(props)
    fixes = clean_fields(cleaned)
    if not fixes:
        return raw, []
    return {**raw, "properties": cleaned}, fixes


def clean_owner(raw: Mapping[str, Any]) -> tuple[Mapping[str, Any], list[tuple[str, str]]]:
    """An owner (its values are top level) cleaned as `clean_record` cleans a record."""
    if not isinstance(raw, Mapping):
        return raw, []
    cleaned = dict(raw)
    fixes = clean_fields(cleaned)
    return (cleaned, fixes) if fixes else (raw, [])


def to_record(
    spec: ObjectMap,
    raw: Mapping[str, Any],
    edges: Mapping[str, Sequence[Edge]] | None = None,
) -> tuple[CrmRecord, list[str]]:
    """Map one wire record; returns the record and the properties that did not convert."""
    rid = record_id(raw)
    props = raw.get("properties")
    if not isinstance(props, Mapping):
        raise MalformedRecord(
            f"HubSpot {spec.hs_type} {rid} has no properties", crm="hubspot", record_id=rid
        )
    edges = edges or {}
    problems: list[str] = []
    values: dict[str, Any] = {}
    for col in spec.columns:
        name, v = _first(props, col.properties)
        try:
            values[col.name] = col.convert(v) if v is not None else None
        except (TypeError, ValueError):
            values[col.name] = None
            problems.append(name or col.name)
    if spec.object is ObjectType.CONTACT:
        _contact_extras(values, props, edges, problems)
    elif spec.object is ObjectType.OPPORTUNITY:
        values["account_id"] = pick_account(edges.get(COMPANIES, ()))
        values["is_closed"] = bool(values.get("is_closed"))
        values["is_won"] = bool(values.get("is_won"))
    elif spec.object is ObjectType.TASK:
        values["account_id"] = pick_account(edges.get(COMPANIES, ()))
        contacts = edges.get(CONTACTS, ())
        values["contact_id"] = contacts[0].to_id if contacts else None
        values["is_closed"] = str(props.get("hs_task_status") or "").upper() == TASK_COMPLETED
    owned: dict[str, Any] = {}
    for key, prop in spec.owned.items():
        v = props.get(prop)
        try:
            convert: Converter = spec.owned_convert.get(key, to_text)
            owned[key] = convert(v)
        except (TypeError, ValueError):
            owned[key] = to_text(v)
    raw_out = dict(raw)
    if edges:
        raw_out["associations"] = {k: [e.to_raw() for e in v] for k, v in edges.items()}
    record = CrmRecord(
        object=spec.object,
        id=rid,
        modified_at=modified_at(spec.modified_property, raw),
        deleted=bool(raw.get("archived")),
        values=values,
        raw=raw_out,
        owned=owned,
    )
    return record, problems


def _contact_extras(
    values: dict[str, Any],
    props: Mapping[str, Any],
    edges: Mapping[str, Sequence[Edge]],
    problems: list[str],
) -> None:
    values["account_id"] = pick_account(edges.get(COMPANIES, ()), props.get("associatedcompanyid"))
    enum = to_text(props.get(BOUNCE_ENUM))
    try:
        bad = to_bool(props.get("hs_email_bad_address")) or False
    except ValueError:
        bad = False
        problems.append("hs_email_bad_address")
    values["email_bounced"] = bool(enum) or bad
    values["bounce_reason"] = bounce_reason(enum, to_text(props.get(BOUNCE_TEXT)))
    values["bounced_at"] = None  # HubSpot exposes no hard-bounce date property
    values["opted_out"] = bool(values.get("opted_out"))
    values["left_company"] = bool(values.get("left_company"))


def bounce_reason(enum: str | None, answer: str | None) -> str | None:
    """The bounce reason as HubSpot records it: the hs_email_hard_bounce_reason_enum option
    first ("SPAM: 550 5.7.1 ..."), then the mail server's answer when there is one.

    The option is passed on unmapped: what each one means for a contact is the bouncing
    rule's setting (`[rules.bouncing_contact] bounce_reasons`), the one place it is decided.
    HubSpot marks all six options as hard bounces, but only UNKNOWN_USER says the address
    is gone (api-facts §4).
    """
    code = enum.strip().upper() if enum else None
    if code and answer:
        return f"{code}: {answer.strip()}"
    return code or answer


def merged_losers(raw: Mapping[str, Any]) -> list[str]:
    """Ids merged into this record (hs_merged_object_ids, ';'-separated), itself excluded."""
    props = raw.get("properties") or {}
    v = to_text(props.get(MERGED_IDS))
    if not v:
        return []
    rid = str(raw.get("id"))
    return [x.strip() for x in v.split(";") if x.strip() and x.strip() != rid]


# ---------------------------------------------------------------- contact roles


def role_name(value: str, names: Mapping[str, str] = BUYING_ROLES) -> str:
    """An hs_buying_role value as a role name by `names` ([hubspot] buying_roles): CHAMPION
    -> Champion, BUDGET_HOLDER -> Economic Buyer; a value it does not name (a portal's own
    option) in title case."""
    v = value.strip()
    return names.get(v.upper()) or v.replace("_", " ").title()


def buying_roles(raw: Mapping[str, Any]) -> list[str]:
    v = to_text((raw.get("properties") or {}).get(BUYING_ROLE))
    return [x.strip() for x in v.split(";") if x.strip()] if v else []


def label_role_id(deal_id: str, contact_id: str, label: str) -> str:
    return f"{deal_id}:{contact_id}:{label}"


def buying_role_id(contact_id: str, value: str) -> str:
    return f"buying_role:{contact_id}:{value}"


def label_role(
    deal_id: str, contact_id: str, label: str, modified: datetime | None, deleted: bool = False
) -> CrmRecord:
    return CrmRecord(
        object=ObjectType.CONTACT_ROLE,
        id=label_role_id(deal_id, contact_id, label),
        modified_at=modified,
        deleted=deleted,
        values={
            "opportunity_id": deal_id,
            "contact_id": contact_id,
            "role": label,
            "is_primary": False,
        },
        raw={
            "source": "association_label",
            "dealId": deal_id,
            "contactId": contact_id,
            "label": label,
        },
    )


def buying_role(
    contact_id: str,
    value: str,
    modified: datetime | None,
    deleted: bool = False,
    names: Mapping[str, str] = BUYING_ROLES,
) -> CrmRecord:
    """One role row per hs_buying_role value: "BUDGET_HOLDER;CHAMPION" makes two."""
    return CrmRecord(
        object=ObjectType.CONTACT_ROLE,
        id=buying_role_id(contact_id, value),
        modified_at=modified,
        deleted=deleted,
        values={
            "opportunity_id": None,
            "contact_id": contact_id,
            "role": role_name(value, names),
            "is_primary": False,
        },
        raw={"source": BUYING_ROLE, "contactId": contact_id, "value": value},
    )


# ---------------------------------------------------------------- owners


def owner_record(raw: Mapping[str, Any]) -> CrmRecord:
    rid = record_id(raw)
    name = " ".join(p for p in (to_text(raw.get("firstName")), to_text(raw.get("lastName"))) if p)
    try:
        modified = parse_datetime(raw.get("updatedAt"))
    except ValueError:
        modified = None
    return CrmRecord(
        object=ObjectType.OWNER,
        id=rid,
        modified_at=modified,
        values={
            "name": name or None,
            "email": to_text(raw.get("email")),
            "active": not bool(raw.get("archived")),
        },
        raw=dict(raw),
    )


# ---------------------------------------------------------------- writes


def _owned_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | tuple):
        return str(for_crm("; ".join(str(x) for x in v), TEXT_MAX))
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(for_crm(str(v), TEXT_MAX))


def owned_properties(mapping: Mapping[str, str], payload: Mapping[str, Any]) -> dict[str, str]:
    """Canonical owned keys -> HubSpot property values; unknown keys raise KeyError."""
    out: dict[str, str] = {}
    for k, v in payload.items():
        if k not in mapping:
            raise KeyError(k)
        out[mapping[k]] = _owned_value(v)
    return out


def account_properties(payload: Mapping[str, Any]) -> dict[str, str]:
    return owned_properties(OWNED_ACCOUNT, payload)


def contact_properties(payload: Mapping[str, Any]) -> dict[str, str]:
    return owned_properties(OWNED_CONTACT, payload)


def task_properties(
    payload: Mapping[str, Any], key: str | None = None, *, create: bool
) -> dict[str, str]:
    """A task payload (subject, body, status, priority, due_date, owner_id) as properties."""
    props: dict[str, str] = {}
    for k, v in payload.items():
        prop = TASK_PROPERTIES.get(k)
        if prop is None or v is None:
            continue
        if k == "due_date":
            props[prop] = ms_string(v if isinstance(v, date) else parse_datetime(v) or v)
        elif k == "status":
            props[prop] = TASK_STATUS.get(str(v).lower(), str(v).upper())
        elif k == "priority":
            props[prop] = TASK_PRIORITY.get(str(v).lower(), str(v).upper())
        else:
            props[prop] = str(for_crm(str(v), TEXT_MAX))
    if create:
        props.setdefault("hs_task_type", TASK_TYPE_TODO)
        props.setdefault("hs_task_status", "NOT_STARTED")
        props.setdefault("hs_timestamp", ms_string(datetime.now(UTC)))
        if key:
            props[TASK_KEY] = key
    return props


def task_associations(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Inline associations of a task create: task->contact 204, task->company 192."""
    out = []
    for key, type_id in (("contact_id", TASK_TO_CONTACT), ("account_id", TASK_TO_COMPANY)):
        v = payload.get(key)
        if v:
            out.append(
                {
                    "to": {"id": str(v)},
                    "types": [
                        {"associationCategory": HUBSPOT_DEFINED, "associationTypeId": type_id}
                    ],
                }
            )
    return out


def completed_properties(payload: Mapping[str, Any]) -> dict[str, str]:
    props = task_properties(payload, create=False)
    props["hs_task_status"] = TASK_COMPLETED
    return props
