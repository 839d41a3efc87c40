"""Property definitions and property groups of the HubSpot emulator, and value checks.

Every object type starts with the standard properties crmsync reads
(api-facts §23) plus the system ones; unknown properties found in a loaded
dataset become custom string properties, so an org's own fields can be seeded
and show up in the properties API. Writes are checked as HubSpot checks them:
unknown property -> PROPERTY_DOESNT_EXIST, bad number/bool/datetime/option ->
the matching INVALID_* error, bad email -> INVALID_EMAIL; a caller turns those
into a whole-batch 400 VALIDATION_ERROR.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .store import iso, to_ms

FIELD_TYPES = {
    "string": {"text", "textarea", "file", "phonenumber", "html"},
    "number": {"number", "calculation_equation"},
    "bool": {"booleancheckbox", "calculation_equation"},
    "enumeration": {"select", "radio", "checkbox", "booleancheckbox", "calculation_equation"},
    "date": {"date"},
    "datetime": {"date"},
    "phone_number": {"phonenumber", "text"},
}
DEFAULT_FIELD = {
    "string": "text",
    "number": "number",
    "bool": "booleancheckbox",
    "enumeration": "select",
    "date": "date",
    "datetime": "date",
}

# Read-only system properties: writes to them are ignored (HubSpot computes them).
SYSTEM = {"hs_object_id", "lastmodifieddate", "hs_lastmodifieddate", "hs_createdate", "hs_merged_object_ids"}

# "salesforceinformation": the group of the properties HubSpot's native Salesforce
# integration keeps (api-facts §24); the sandbox always has it, as a connected portal does.
_SF_GROUP = ("salesforceinformation", "Salesforce information")
GROUPS = {
    "contacts": [("contactinformation", "Contact information"), ("emailinformation", "Email information"), ("sales_properties", "Sales properties"), _SF_GROUP],
    "companies": [("companyinformation", "Company information"), ("sales_properties", "Sales properties"), _SF_GROUP],
    "deals": [("dealinformation", "Deal information"), ("sales_properties", "Sales properties"), _SF_GROUP],
    "tasks": [("task", "Task"), ("engagement", "Engagement")],
}
CUSTOM_GROUP = {"contacts": "contactinformation", "companies": "companyinformation", "deals": "dealinformation", "tasks": "task"}

# HubSpot-defined enumerations with their options as (internal value, label). Source: a live
# portal's property export (the same in every portal), hairsolutionsco/automations_hub
# hubspot/objects/contacts/properties.md at fc5bfcd9 (api-facts §4):
# - hs_buying_role: enumeration, fieldType checkbox (multi-select, values ";"-separated),
#   "Contacts can have multiple roles"; nine options.
# - hs_email_hard_bounce_reason_enum: enumeration, fieldType radio; "The issue that caused a
#   contact to hard bounce from your emails"; six options (meanings: HubSpot KB "Email bounce
#   types"). HubSpot counts MAILBOX_FULL, POLICY, SPAM and CONTENT as hard bounces too.
_BUYING_ROLES = [("BLOCKER", "Blocker"), ("BUDGET_HOLDER", "Budget Holder"),
                 ("CHAMPION", "Champion"), ("DECISION_MAKER", "Decision Maker"),
                 ("END_USER", "End User"), ("EXECUTIVE_SPONSOR", "Executive Sponsor"),
                 ("INFLUENCER", "Influencer"), ("LEGAL_AND_COMPLIANCE", "Legal & Compliance"),
                 ("OTHER", "Other")]
_HARD_BOUNCE_REASONS = [("CONTENT", "Content"), ("MAILBOX_FULL", "Mailbox full"),
                        ("OTHER", "Other"), ("POLICY", "Policy"), ("SPAM", "Spam"),
                        ("UNKNOWN_USER", "Unknown user")]
_LEAD_STATUS = ["NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "UNQUALIFIED", "ATTEMPTED_TO_CONTACT",
                "CONNECTED", "BAD_TIMING"]
_LIFECYCLE = ["subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
              "customer", "evangelist", "other"]
_STAGES = ["appointmentscheduled", "qualifiedtobuy", "presentationscheduled",
           "decisionmakerboughtin", "contractsent", "closedwon", "closedlost"]

# (name, type, options or None, group index); label derives from the name. Options are
# internal values (label: title case) or (value, label) pairs.
_COMMON = [
    ("hs_object_id", "number", None, 0),
    ("createdate", "datetime", None, 0),
    ("hs_lastmodifieddate", "datetime", None, 0),
    ("hubspot_owner_id", "enumeration", None, 1),
    ("hs_merged_object_ids", "enumeration", None, 0),
    ("notes_last_contacted", "datetime", None, 1),
    ("notes_last_updated", "datetime", None, 1),
]
Options = list[str] | list[tuple[str, str]]
STANDARD: dict[str, list[tuple[str, str, Options | None, int]]] = {
    "contacts": _COMMON + [
        ("email", "string", None, 0), ("firstname", "string", None, 0),
        ("lastname", "string", None, 0), ("jobtitle", "string", None, 0),
        ("phone", "string", None, 0), ("company", "string", None, 0),
        ("associatedcompanyid", "number", None, 0), ("lastmodifieddate", "datetime", None, 0),
        ("hs_lead_status", "enumeration", _LEAD_STATUS, 2),
        ("lifecyclestage", "enumeration", _LIFECYCLE, 0),
        ("hs_last_sales_activity_timestamp", "datetime", None, 2),
        ("hs_email_optout", "bool", ["true", "false"], 1),
        ("hs_email_bounce", "number", None, 1),
        ("hs_email_hard_bounce_reason_enum", "enumeration", _HARD_BOUNCE_REASONS, 1),
        ("hs_email_hard_bounce_reason", "string", None, 1),
        ("hs_email_bad_address", "bool", ["true", "false"], 1),
        ("hs_email_quarantined", "bool", ["true", "false"], 1),
        ("hs_buying_role", "enumeration", _BUYING_ROLES, 2),
        ("hs_additional_emails", "enumeration", None, 1),
        # HubSpot's Salesforce integration (api-facts §24): the synced Salesforce record's ids
        ("salesforcecontactid", "string", None, 3), ("salesforceleadid", "string", None, 3),
        ("salesforceaccountid", "string", None, 3), ("salesforcelastsynctime", "datetime", None, 3),
        ("salesforcedeleted", "bool", ["true", "false"], 3),
    ],
    "companies": _COMMON + [
        ("name", "string", None, 0), ("domain", "string", None, 0),
        ("website", "string", None, 0), ("industry", "string", None, 0),
        ("hs_ideal_customer_profile", "enumeration", ["tier_1", "tier_2", "tier_3"], 0),
        ("lifecyclestage", "enumeration", _LIFECYCLE, 0), ("numberofemployees", "number", None, 0),
        ("city", "string", None, 0), ("country", "string", None, 0), ("phone", "string", None, 0),
        ("num_associated_contacts", "number", None, 0),
        ("salesforceaccountid", "string", None, 2), ("salesforcelastsynctime", "datetime", None, 2),
    ],
    "deals": _COMMON + [
        ("dealname", "string", None, 0), ("amount", "number", None, 0),
        ("dealstage", "enumeration", _STAGES, 0), ("pipeline", "enumeration", ["default"], 0),
        ("closedate", "datetime", None, 0), ("hs_is_closed", "bool", ["true", "false"], 0),
        ("hs_is_closed_won", "bool", ["true", "false"], 0),
        ("hs_salesforceopportunityid", "string", None, 2),
        ("salesforcelastsynctime", "datetime", None, 2),
    ],
    "tasks": _COMMON + [
        ("hs_timestamp", "datetime", None, 0), ("hs_createdate", "datetime", None, 0),
        ("hs_task_subject", "string", None, 0), ("hs_task_body", "string", None, 0),
        ("hs_task_status", "enumeration", ["NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"], 0),
        ("hs_task_priority", "enumeration", ["NONE", "LOW", "MEDIUM", "HIGH"], 0),
        ("hs_task_type", "enumeration", ["EMAIL", "CALL", "TODO", "LINKED_IN"], 0),
        ("hs_task_reminders", "enumeration", None, 0),
        ("hs_task_completion_date", "datetime", None, 0),
    ],
}
MULTI = {"hs_buying_role", "hs_merged_object_ids", "hs_additional_emails", "hs_task_reminders"}
RADIO = {"hs_email_hard_bounce_reason_enum"}

DEFAULT_PROPERTIES = {
    "contacts": ["createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"],
    "companies": ["createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"],
    "deals": ["amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate",
              "hs_object_id", "pipeline"],
    "tasks": ["hs_createdate", "hs_lastmodifieddate", "hs_object_id"],
}

_EMAIL = re.compile(r"^[^@\s\"(),:;<>\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}$")
_NUMBER = re.compile(r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


@dataclass
class Prop:
    name: str
    label: str
    type: str
    field_type: str
    group: str
    options: list[dict[str, Any]] = field(default_factory=list)
    description: str = ""
    hubspot_defined: bool = False
    has_unique_value: bool = False
    hidden: bool = False
    form_field: bool = False
    display_order: int = -1
    created_ms: int = 0
    updated_ms: int = 0
    calculation_formula: str | None = None
    archived_ms: int | None = None

    def wire(self) -> dict[str, Any]:
        """The property as the properties API answers it (every key the client model has)."""
        out: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group,
            "options": [dict(o) for o in self.options],
            "displayOrder": self.display_order,
            "calculated": False,
            "externalOptions": False,
            "hasUniqueValue": self.has_unique_value,
            "hidden": self.hidden,
            "hubspotDefined": self.hubspot_defined,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyOptions": self.hubspot_defined and self.type != "enumeration",
                "readOnlyValue": self.name in SYSTEM,
            },
            "formField": self.form_field,
            "createdAt": iso(self.created_ms),
            "updatedAt": iso(self.updated_ms),
            "archived": self.archived_ms is not None,
            "showCurrencySymbol": self.name == "amount",
        }
        if self.archived_ms is not None:
            out["archivedAt"] = iso(self.archived_ms)
        if self.calculation_formula:
            out["calculationFormula"] = self.calculation_formula
        return out


def infer_type(value: object) -> str:
    """A custom property's type guessed from a seeded value: date, datetime, bool or string."""
    v = str(value or "")
    if len(v) == 10 and v[4] == "-" and v[7] == "-" and v.replace("-", "").isdigit():
        return "date"
    if len(v) >= 19 and v[4] == "-" and v[10] == "T" and to_ms(v) is not None:
        return "datetime"
    if v in ("true", "false"):
        return "bool"
    return "string"


def _label(name: str) -> str:
    return name.replace("hs_", "").replace("_", " ").capitalize()


def options_from(values: list[str] | list[tuple[str, str]]) -> list[dict[str, Any]]:
    out = []
    for i, v in enumerate(values):
        if isinstance(v, str):
            value, label = v, v.replace("_", " ").title()
        else:
            value, label = v
        out.append({"label": label, "value": value, "displayOrder": i, "hidden": False,
                    "description": ""})
    return out


class Schema:
    """Properties and groups of one object type."""

    def __init__(self, obj: str, now_ms: int = 0) -> None:
        self.obj = obj
        self.props: dict[str, Prop] = {}
        self.archived: dict[str, Prop] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        for i, (name, label) in enumerate(GROUPS[obj]):
            self.groups[name] = {"name": name, "label": label, "displayOrder": i, "archived": False}
        for name, type_, opts, g in STANDARD[obj]:
            group = GROUPS[obj][min(g, len(GROUPS[obj]) - 1)][0]
            p = Prop(name=name, label=_label(name), type=type_, field_type=DEFAULT_FIELD[type_],
                     group=group, options=options_from(opts or []), hubspot_defined=True,
                     created_ms=now_ms, updated_ms=now_ms, has_unique_value=name == "email")
            if name in MULTI:
                p.field_type = "checkbox"
            elif name in RADIO:
                p.field_type = "radio"
            self.props[name] = p

    def add_custom(self, name: str, type_: str = "string", now_ms: int = 0, **kw: Any) -> Prop:
        field_type = kw.pop("field_type", None) or DEFAULT_FIELD.get(type_, "text")
        group = kw.pop("group", None) or CUSTOM_GROUP[self.obj]
        if group not in self.groups:
            self.groups[group] = {"name": group, "label": group, "displayOrder": -1, "archived": False}
        p = Prop(name=name, label=kw.pop("label", None) or name, type=type_,
                 field_type=field_type, group=group, created_ms=now_ms, updated_ms=now_ms, **kw)
        self.archived.pop(name, None)
        self.props[name] = p
        return p


# ------------------------------------------------------------------ value checks


def check_value(prop: Prop | None, name: str, value: Any, owners: set[str] | None = None,
                *, max_chars: int | None = None) -> tuple[str | None, dict[str, Any] | None]:
    """Normalise one written value; return (value, None) or (None, HubSpot's error dict)."""
    if prop is None:
        return None, _err(name, f'Property "{name}" does not exist', "PROPERTY_DOESNT_EXIST")
    if value is None:
        return "", None
    if isinstance(value, bool):
        value = "true" if value else "false"
    s = str(value)
    if s == "":
        return "", None
    t = prop.type
    if name == "email" and not _EMAIL.match(s.strip()):
        return None, _err(name, f"Email address {s} is invalid", "INVALID_EMAIL")
    if name == "hubspot_owner_id" and owners is not None and s not in owners:
        return None, _err(name, f"{s} is not a valid owner id", "INVALID_OWNER_ID")
    if t == "number":
        if not _NUMBER.match(s.strip()):
            return None, _err(name, f"{s} was not a valid number.", "INVALID_INTEGER")
        return s.strip(), None
    if t == "bool":
        low = s.strip().lower()
        if low not in ("true", "false"):
            return None, _err(name, f"{s} was not a valid boolean value", "INVALID_BOOLEAN")
        return low, None
    if t in ("datetime", "date"):
        ms = to_ms(s)
        if ms is None:
            return None, _err(name, f"{s} was not a valid long or ISO 8601 date", "INVALID_DATE")
        if t == "date":
            return iso(ms)[:10], None
        return iso(ms), None
    if t == "enumeration" and prop.options:
        bad = bad_options(prop, s)
        if bad:
            return None, invalid_option(prop, bad[0])
    if max_chars is not None and len(s) > max_chars:
        # The error's code and text are not documented (UNCONFIRMED): the sandbox's own words.
        return None, _err(name, f"{name} has {len(s)} characters; at most {max_chars} can be "
                          "set through the API", "MAX_CHARACTERS_EXCEEDED")
    return s, None


def bad_options(prop: Prop, value: str) -> list[str]:
    """The values of `value` that are not options of enumeration `prop` (none if it has none).

    A multi-select (fieldType checkbox) value is ";"-separated internal values; each must be
    an option ("enumeration — A string representing a set of options, with options separated
    by a semicolon", HubSpot properties guide; api-facts §4). Harsher reading for a
    multi-select (api-facts §5): one unknown token refuses the whole value.
    """
    if prop.type != "enumeration" or not prop.options or value == "":
        return []
    allowed = {o["value"] for o in prop.options}
    parts = value.split(";") if prop.field_type == "checkbox" else [value]
    return [v for v in parts if v and v not in allowed]


def invalid_option(prop: Prop, bad: str) -> dict[str, Any]:
    """HubSpot's INVALID_OPTION entry, as real 400 bodies carry it (api-facts §5:
    gregorspan/csc-frodx#21, "reports was not one of the allowed options: [PRODUCT_ISSUE,
    BILLING_ISSUE, ...]"): the internal values, in the property's option order. The caller
    refuses the whole request or batch with 400 VALIDATION_ERROR (objects.validation_error)."""
    allowed = ", ".join(o["value"] for o in prop.options)
    return _err(prop.name, f"{bad} was not one of the allowed options: [{allowed}]", "INVALID_OPTION")


def _err(name: str, message: str, code: str) -> dict[str, Any]:
    return {"isValid": False, "message": message, "error": code, "name": name,
            "localizedErrorMessage": message}
