"""Salesforce object and field definitions the emulator serves, and value formats.

One `SObject` per supported object (User, Account, Contact, Opportunity,
OpportunityContactRole, Task) with the standard fields crmsync reads
(api-facts §20), and the setup objects field-level security is made of
(Profile, PermissionSet, FieldPermissions, PermissionSetAssignment: ordinary
sObjects over REST, api-facts §13). Fields a dataset brings that are not defined here, and
fields created through the Tooling API, are added as custom fields at run time.
`describe_field`/`describe_object` render the REST describe shapes.

Values are kept in their wire form so comparisons and output need no
conversion: datetimes as "2026-05-01T12:34:56.000+0000" in UTC (which sorts
lexically), dates as "2026-05-01", booleans and numbers as JSON values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

STRING_TYPES = frozenset(
    {"string", "email", "textarea", "picklist", "multipicklist", "url", "phone", "combobox"}
)
NUMBER_TYPES = frozenset({"double", "currency", "percent", "int"})
ID_TYPES = frozenset({"id", "reference"})

_SOAP_TYPES = {
    "address": "urn:address",
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
}

# Tooling API CustomField Metadata.type -> describe type
METADATA_TYPES = {
    "text": "string",
    "number": "double",
    "checkbox": "boolean",
    "date": "date",
    "datetime": "datetime",
    "longtextarea": "textarea",
    "textarea": "textarea",
    "html": "textarea",
    "picklist": "picklist",
    "multiselectpicklist": "multipicklist",
    "email": "email",
    "url": "url",
    "percent": "percent",
    "currency": "currency",
    "phone": "phone",
}


@dataclass
class Field:
    """One field as describe shows it."""

    name: str
    type: str
    label: str = ""
    custom: bool = False
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    filterable: bool = True
    external_id: bool = False
    unique: bool = False
    length: int = 0
    precision: int = 0
    scale: int = 0
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    picklist: tuple[str, ...] = ()
    calculated: bool = False
    default: Any = None
    required: bool = False  # must be given on create
    # Needs field-level security: a custom field created through the Tooling API is
    # visible to nobody (absent from describe, refused in SOQL and writes) until a
    # permission set or profile grants it (api-facts §13: simple-salesforce#621,
    # restforce#353, ForceCLI/force#163). Required fields are visible to everyone.
    restricted: bool = False
    # A component of a compound field (BillingCity of BillingAddress): describe's
    # compoundFieldName. The compound itself is type "address" (compound.py).
    compound_field_name: str | None = None

    def __post_init__(self) -> None:
        if not self.label:
            base = self.name[:-3] if self.name.endswith("__c") else self.name
            if base.endswith("Id") and self.type == "reference":
                base = base[:-2] + " ID"
            self.label = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", base).replace("_", " ")
        if not self.length and self.type in STRING_TYPES:
            self.length = {"textarea": 32000, "email": 80, "phone": 40}.get(self.type, 255)
        if self.type in ("id", "reference") and not self.length:
            self.length = 18


@dataclass
class SObject:
    name: str
    label: str
    key_prefix: str
    fields: list[Field] = field(default_factory=list)


def _ro(name: str, type_: str, **kw: Any) -> Field:
    return Field(name, type_, createable=False, updateable=False, **kw)


def _ref(name: str, *to: str, rel: str | None = None, **kw: Any) -> Field:
    return Field(name, "reference", reference_to=to, relationship_name=rel or name[:-2], **kw)


def address_field(name: str) -> Field:
    """A compound address field (compound.py): read-only, not filterable; SOQL answers
    it as an object built from its components (BillingCity, ... of BillingAddress)."""
    return Field(name, "address", createable=False, updateable=False, filterable=False)


def _system(deletable: bool = True) -> list[Field]:
    out = [_ro("Id", "id", nillable=False)]
    if deletable:
        out.append(_ro("IsDeleted", "boolean", nillable=False, default=False))
    out += [
        _ro("CreatedDate", "datetime", nillable=False),
        _ref("CreatedById", "User", createable=False, updateable=False, nillable=False),
        _ro("LastModifiedDate", "datetime", nillable=False),
        _ref("LastModifiedById", "User", createable=False, updateable=False, nillable=False),
        _ro("SystemModstamp", "datetime", nillable=False),
    ]
    return out


# A fresh org's defaults, plus "Champion": not a default value, but the sandbox org
# stands for one whose admin added it, as most sales orgs using crmsync have
# (api-facts §20). An unknown value still gets the connector's warning.
ROLE_VALUES = (
    "Business User", "Decision Maker", "Economic Buyer", "Economic Decision Maker",
    "Evaluator", "Executive Sponsor", "Influencer", "Technical Buyer", "Other", "Champion",
)
STAGE_VALUES = (
    "Prospecting", "Qualification", "Needs Analysis", "Value Proposition",
    "Id. Decision Makers", "Perception Analysis", "Proposal/Price Quote",
    "Negotiation/Review", "Closed Won", "Closed Lost",
)
TASK_STATUS_VALUES = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")
CLOSED_TASK_STATUSES = frozenset({"completed"})


def standard_objects() -> list[SObject]:
    """Fresh definitions (callers mutate them when fields are added)."""
    owner = _ref("OwnerId", "User", rel="Owner", nillable=False)
    return [
        SObject("Profile", "Profile", "00e", _system(deletable=False) + [
            Field("Name", "string", required=True),
            Field("Description", "string"),
        ]),
        # Setup objects granting access (REST sObjects; api-facts §13). `Field` is a
        # restricted picklist of the permissionable fields, spelled Object.Field.
        SObject("PermissionSet", "Permission Set", "0PS", _system(deletable=False) + [
            Field("Name", "string", length=80, required=True),
            Field("Label", "string", length=80, required=True),
            Field("Description", "string"),
            _ro("IsOwnedByProfile", "boolean", nillable=False, default=False),
            _ref("ProfileId", "Profile", createable=False, updateable=False),
        ]),
        SObject("FieldPermissions", "Field Permissions", "01k", _system(deletable=False) + [
            _ref("ParentId", "PermissionSet", rel="Parent", required=True, updateable=False),
            Field("SobjectType", "string", length=40, required=True, updateable=False),
            Field("Field", "string", length=255, required=True, updateable=False),
            Field("PermissionsRead", "boolean", nillable=False, default=False),
            Field("PermissionsEdit", "boolean", nillable=False, default=False),
        ]),
        SObject("PermissionSetAssignment", "Permission Set Assignment", "0Pa", _system(deletable=False) + [
            _ref("AssigneeId", "User", rel="Assignee", required=True, updateable=False),
            _ref("PermissionSetId", "PermissionSet", required=True, updateable=False),
        ]),
        SObject("User", "User", "005", _system(deletable=False) + [
            Field("Username", "string", length=80, required=True, unique=True),
            Field("FirstName", "string", length=40),
            Field("LastName", "string", length=80, required=True),
            _ro("Name", "string", calculated=True),
            Field("Email", "email", required=True),
            Field("IsActive", "boolean", nillable=False, default=True),
            _ro("UserType", "picklist", picklist=("Standard",), default="Standard"),
            _ref("ManagerId", "User", rel="Manager"),
            Field("Title", "string", length=80),
            Field("Department", "string", length=80),
            _ref("ProfileId", "Profile"),
            address_field("Address"),
        ]),
        SObject("Account", "Account", "001", _system() + [
            _ref("MasterRecordId", "Account", rel="MasterRecord", createable=False, updateable=False),
            Field("Name", "string", required=True),
            Field("Type", "picklist", picklist=("Prospect", "Customer - Direct", "Customer - Channel", "Partner", "Other")),
            _ref("ParentId", "Account", rel="Parent"),
            Field("Website", "url"),
            Field("Phone", "phone"),
            Field("Industry", "picklist", picklist=("Agriculture", "Banking", "Technology", "Healthcare", "Retail", "Other")),
            Field("AnnualRevenue", "currency", precision=18, scale=0),
            Field("NumberOfEmployees", "int", precision=8),
            Field("BillingCity", "string", length=40, compound_field_name="BillingAddress"),
            Field("BillingCountry", "string", length=80, compound_field_name="BillingAddress"),
            address_field("BillingAddress"),
            Field("Description", "textarea"),
            dataclass_replace(owner),
            _ro("LastActivityDate", "date"),
        ]),
        SObject("Contact", "Contact", "003", _system() + [
            _ref("MasterRecordId", "Contact", rel="MasterRecord", createable=False, updateable=False),
            _ref("AccountId", "Account"),
            Field("LastName", "string", length=80, required=True),
            Field("FirstName", "string", length=40),
            Field("Salutation", "picklist", picklist=("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.")),
            _ro("Name", "string", length=121, calculated=True),
            Field("Phone", "phone"),
            Field("MobilePhone", "phone"),
            _ref("ReportsToId", "Contact", rel="ReportsTo"),
            Field("Email", "email"),
            Field("Title", "string", length=128),
            Field("Department", "string", length=80),
            Field("Description", "textarea"),
            address_field("MailingAddress"),
            dataclass_replace(owner),
            Field("HasOptedOutOfEmail", "boolean", nillable=False, default=False),
            _ro("LastActivityDate", "date"),
            Field("EmailBouncedReason", "string"),
            Field("EmailBouncedDate", "datetime"),
            _ro("IsEmailBounced", "boolean", nillable=False, default=False),
        ]),
        SObject("Opportunity", "Opportunity", "006", _system() + [
            _ref("AccountId", "Account"),
            Field("Name", "string", length=120, required=True),
            Field("Description", "textarea"),
            Field("StageName", "picklist", picklist=STAGE_VALUES, required=True),
            Field("Amount", "currency", precision=18, scale=2),
            Field("Probability", "percent", precision=3, scale=0),
            Field("CloseDate", "date", required=True),
            Field("Type", "picklist", picklist=("Existing Business", "New Business")),
            _ro("IsClosed", "boolean", nillable=False, default=False),
            _ro("IsWon", "boolean", nillable=False, default=False),
            dataclass_replace(owner),
        ]),
        SObject("OpportunityContactRole", "Opportunity Contact Role", "00K", _system() + [
            _ref("OpportunityId", "Opportunity", required=True, updateable=False),
            _ref("ContactId", "Contact", required=True),
            Field("Role", "picklist", picklist=ROLE_VALUES),
            Field("IsPrimary", "boolean", nillable=False, default=False),
        ]),
        SObject("Task", "Task", "00T", _system() + [
            _ref("WhoId", "Contact", "Lead", rel="Who"),
            _ref("WhatId", "Account", "Opportunity", rel="What"),
            Field("Subject", "combobox", picklist=("Call", "Send Letter", "Send Quote", "Other")),
            Field("ActivityDate", "date"),
            Field("Status", "picklist", picklist=TASK_STATUS_VALUES, nillable=False, default="Not Started"),
            Field("Priority", "picklist", picklist=("High", "Normal", "Low"), nillable=False, default="Normal"),
            dataclass_replace(owner),
            Field("Description", "textarea"),
            Field("Type", "picklist", picklist=("Call", "Email", "Meeting", "Other")),
            _ro("IsClosed", "boolean", nillable=False, default=False),
            _ref("AccountId", "Account", createable=False, updateable=False),
            Field("TaskSubtype", "picklist", picklist=("Task", "Email", "Call"), updateable=False, default="Task"),
            _ro("CompletedDateTime", "datetime"),
        ]),
    ]


def dataclass_replace(f: Field) -> Field:
    """A copy, so objects never share a mutable Field."""
    return Field(**{k: getattr(f, k) for k in f.__dataclass_fields__})


# ------------------------------------------------------------------ values

_CANON_DT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")
_DT = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,6}))?)?(Z|[+-]\d\d:?\d\d)?$"
)
_DATE = re.compile(r"^\d{4}-\d\d-\d\d$")


def format_datetime(dt: datetime) -> str:
    """Salesforce wire form of an aware datetime, in UTC."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


def format_ms(ms: int) -> str:
    return format_datetime(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms))


def parse_datetime(value: Any) -> datetime:
    """Parse a wire/ISO datetime (Z, +0000, +00:00, fractions) or epoch ms; naive = UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=value)
    if not isinstance(value, str):
        raise ValueError(f"not a datetime: {value!r}")
    m = _DT.match(value.strip())
    if not m:
        raise ValueError(f"not a datetime: {value!r}")
    y, mo, d, h, mi, s, frac, tz = m.groups()
    micro = int((frac or "0").ljust(6, "0"))
    offset = timedelta(0)
    if tz and tz != "Z":
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        offset = sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    naive = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0), micro)
    return (naive - offset).replace(tzinfo=UTC)


def canonical_datetime(value: Any) -> str:
    if isinstance(value, str) and _CANON_DT.match(value):
        return value
    return format_datetime(parse_datetime(value))


def canonical_date(value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        v = value.strip()
        if _DATE.match(v):
            date.fromisoformat(v)
            return v
        if _DT.match(v):  # a datetime where a date is expected: keep the day
            return v[:10]
    raise ValueError(f"not a date: {value!r}")


def infer_field(name: str, values: Iterable[Any]) -> Field:
    """A custom field for an unknown dataset field, typed from its first non-null value."""
    sample = next((v for v in values if v is not None), None)
    kw: dict[str, Any]
    if isinstance(sample, bool):
        type_, kw = "boolean", {"nillable": False, "default": False}
    elif isinstance(sample, int | float):
        type_, kw = "double", {"precision": 18, "scale": 0 if isinstance(sample, int) else 2}
    elif isinstance(sample, str) and _CANON_DT.match(sample) or isinstance(sample, str) and _DT.match(sample) and "T" in sample:
        type_, kw = "datetime", {}
    elif isinstance(sample, str) and _DATE.match(sample):
        type_, kw = "date", {}
    elif isinstance(sample, str) and len(sample) > 255:
        type_, kw = "textarea", {"length": 131072}
    else:
        type_, kw = "string", {}
    return Field(name, type_, custom=True, **kw)


def field_from_metadata(name: str, meta: dict[str, Any]) -> Field:
    """A Field from a Tooling API CustomField Metadata body."""
    mtype = str(meta.get("type") or "Text")
    type_ = METADATA_TYPES.get(mtype.lower())
    if type_ is None:
        raise ValueError(f"unsupported field type {mtype!r}")
    kw: dict[str, Any] = {}
    if type_ in STRING_TYPES and meta.get("length"):
        kw["length"] = int(meta["length"])
    if type_ == "textarea" and mtype.lower() == "longtextarea":
        kw["length"] = int(meta.get("length") or 32768)
    if type_ in NUMBER_TYPES:
        kw["precision"] = int(meta.get("precision") or 18)
        kw["scale"] = int(meta.get("scale") or 0)
    if type_ == "boolean":
        kw["nillable"] = False
        kw["default"] = str(meta.get("defaultValue", "false")).lower() == "true"
    if type_ in ("picklist", "multipicklist"):
        values = ((meta.get("valueSet") or {}).get("valueSetDefinition") or {}).get("value") or []
        kw["picklist"] = tuple(str(v.get("fullName") or v.get("label")) for v in values)
    required = bool(meta.get("required"))
    if required:
        kw["nillable"] = False
    return Field(
        name,
        type_,
        label=str(meta.get("label") or ""),
        custom=True,
        external_id=bool(meta.get("externalId")),
        unique=bool(meta.get("unique")),
        required=required,
        restricted=not required,
        **kw,
    )


# ------------------------------------------------------------------ describe


def describe_field(f: Field) -> dict[str, Any]:
    return {
        "aggregatable": f.type not in ("textarea", "multipicklist"),
        "autoNumber": False,
        "byteLength": f.length * 3 if f.type in STRING_TYPES or f.type in ID_TYPES else 0,
        "calculated": f.calculated,
        "caseSensitive": False,
        "createable": f.createable,
        "compoundFieldName": f.compound_field_name,
        "custom": f.custom,
        "defaultValue": f.default if f.type != "boolean" else bool(f.default),
        "defaultedOnCreate": f.default is not None or f.name in ("Id", "OwnerId", "CreatedDate"),
        "digits": 0,
        "externalId": f.external_id,
        "filterable": f.filterable and f.type != "textarea",
        "groupable": f.type not in ("textarea", "double", "currency", "percent", "datetime"),
        "idLookup": f.name == "Id" or f.external_id,
        "label": f.label,
        "length": f.length,
        "name": f.name,
        "nameField": f.name == "Name",
        "nillable": f.nillable,
        "permissionable": f.nillable and f.createable,
        "picklistValues": [
            {"active": True, "defaultValue": v == f.default, "label": v, "validFor": None, "value": v}
            for v in f.picklist
        ],
        "polymorphicForeignKey": len(f.reference_to) > 1,
        "precision": f.precision,
        "referenceTo": list(f.reference_to),
        "relationshipName": f.relationship_name,
        "restrictedPicklist": False,
        "scale": f.scale,
        "soapType": _SOAP_TYPES.get(f.type, "xsd:string"),
        "sortable": f.type not in ("textarea", "multipicklist"),
        "type": f.type,
        "unique": f.unique,
        "updateable": f.updateable,
    }


def object_urls(name: str, version: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{name}"
    return {
        "compactLayouts": f"{base}/describe/compactLayouts",
        "rowTemplate": f"{base}/{{ID}}",
        "describe": f"{base}/describe",
        "sobject": base,
    }


def object_summary(obj: SObject, version: str) -> dict[str, Any]:
    return {
        "activateable": False,
        "createable": True,
        "custom": False,
        "customSetting": False,
        "deletable": obj.name != "User",
        "deprecatedAndHidden": False,
        "feedEnabled": False,
        "keyPrefix": obj.key_prefix,
        "label": obj.label,
        "labelPlural": obj.label + "s",
        "layoutable": True,
        "mergeable": obj.name in ("Account", "Contact"),
        "mruEnabled": True,
        "name": obj.name,
        "queryable": True,
        "replicateable": True,
        "retrieveable": True,
        "searchable": True,
        "triggerable": True,
        "undeletable": obj.name != "User",
        "updateable": True,
        "urls": object_urls(obj.name, version),
    }
