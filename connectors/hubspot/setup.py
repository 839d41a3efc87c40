"""`crmsync setup --crm hubspot`: the property group and properties crmsync writes to.

The signature property `crmsync_signature` (string) goes on all three objects: it
says which values crmsync wrote (docs/ownership.md).

Per object (companies, contacts, tasks) it reads the property groups and the
property list once (2 calls), creates the `crmsync` group and each missing
property (unless dry_run), and reports one FieldCheck per group/property:
"exists", "created", "missing" (dry run) or "failed" (with HubSpot's message).
An existing property of another type is reported in `detail`, never changed.
Running it twice changes nothing: the second run only reads. A 409 on create
(someone created it in between) counts as "exists".

The exemption property (`exempt_field`, default crmsync_exempt) is created on
companies and contacts only when it is crmsync's own (name starts with
`crmsync_`); a portal field named in sync.toml is only checked.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from crmsync.connectors.errors import CrmError, CrmUnavailable
from crmsync.state.model import CoverageStatus, FieldCheck, HygieneStatus

from . import fields as f
from .client import HubSpotApi, Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PropertyDef:
    name: str
    label: str
    type: str  # string | number | enumeration | ...
    field_type: str  # text | textarea | number | select ...
    description: str
    options: tuple[str, ...] = ()

    def body(self) -> dict[str, object]:
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "groupName": f.GROUP,
            "description": self.description,
            "options": [
                {"label": o.title(), "value": o, "displayOrder": i, "hidden": False}
                for i, o in enumerate(self.options)
            ],
        }


def _num(name: str, label: str, desc: str) -> PropertyDef:
    return PropertyDef(name, label, "number", "number", desc)


def _text(name: str, label: str, desc: str, long: bool = False) -> PropertyDef:
    return PropertyDef(name, label, "string", "textarea" if long else "text", desc)


def definitions(settings: Settings) -> dict[str, list[PropertyDef]]:
    """The properties crmsync owns, per HubSpot object type."""
    a, c = f.OWNED_ACCOUNT, f.OWNED_CONTACT
    companies = [
        _num(a["stakeholders"], "Stakeholders", "Active contacts at the account (crmsync)."),
        _num(
            a["engaged"],
            "Engaged stakeholders",
            "Contacts with activity in the last 90 days (crmsync).",
        ),
        _text(
            a["roles_covered"],
            "Buying roles covered",
            "Buying roles held by active contacts (crmsync).",
        ),
        _num(
            a["coverage_score"],
            "Relationship coverage score",
            "0-100 relationship coverage (crmsync).",
        ),
        PropertyDef(
            a["coverage_status"],
            "Relationship coverage",
            "enumeration",
            "select",
            "green / amber / red relationship coverage (crmsync).",
            tuple(s.value for s in CoverageStatus),
        ),
        _text(
            a["hygiene_summary"],
            "Contact hygiene summary",
            "What crmsync found at this account.",
            True,
        ),
    ]
    contacts = [
        PropertyDef(
            c["status"],
            "Contact hygiene status",
            "enumeration",
            "select",
            "ok / stale / bouncing / departed (crmsync).",
            tuple(s.value for s in HygieneStatus),
        ),
        _text(c["reason"], "Contact hygiene reason", "Why crmsync set the status.", True),
    ]
    tasks = [_text(f.TASK_KEY, "crmsync key", "crmsync's idempotency key for this task.")]
    signature = _text(
        f.SIGNATURE,
        "crmsync signature",
        "Which values on this record crmsync wrote (a hash per field); a value it did not "
        "write is never overwritten. Do not edit.",
    )
    companies.append(signature)
    contacts.append(signature)
    tasks.append(signature)
    exempt = settings.exempt_field
    if exempt and exempt.startswith("crmsync_"):
        desc = "Set to exclude this record from crmsync's hygiene checks (any value; the reason)."
        companies.append(_text(exempt, "crmsync exemption", desc))
        contacts.append(_text(exempt, "crmsync exemption", desc))
    return {f.COMPANIES: companies, f.CONTACTS: contacts, f.TASKS: tasks}


def ensure_fields(api: HubSpotApi, settings: Settings, *, dry_run: bool) -> list[FieldCheck]:
    checks: list[FieldCheck] = []
    for hs_type, defs in definitions(settings).items():
        checks.extend(_ensure_object(api, hs_type, defs, dry_run=dry_run))
    return checks


def _ensure_object(
    api: HubSpotApi, hs_type: str, defs: Sequence[PropertyDef], *, dry_run: bool
) -> list[FieldCheck]:
    checks: list[FieldCheck] = []
    groups = api.call("property_groups", "crm.properties.groups_api", "get_all", hs_type).body or {}
    names = {g.get("name") for g in groups.get("results") or []}
    if f.GROUP in names:
        checks.append(FieldCheck(hs_type, f"group:{f.GROUP}", "exists"))
    elif dry_run:
        checks.append(FieldCheck(hs_type, f"group:{f.GROUP}", "missing"))
    else:
        checks.append(
            _create(
                api,
                hs_type,
                f"group:{f.GROUP}",
                "property_group_create",
                "crm.properties.groups_api",
                {"name": f.GROUP, "label": "crmsync", "displayOrder": -1},
            )
        )
    existing = {
        p.get("name"): p
        for p in (
            api.call(
                "properties", "crm.properties.core_api", "get_all", hs_type, archived=False
            ).body
            or {}
        ).get("results")
        or []
    }
    for d in defs:
        have = existing.get(d.name)
        if have is not None:
            checks.append(FieldCheck(hs_type, d.name, "exists", _difference(d, have)))
        elif dry_run:
            checks.append(FieldCheck(hs_type, d.name, "missing", f"would create ({d.type})"))
        else:
            checks.append(
                _create(
                    api, hs_type, d.name, "property_create", "crm.properties.core_api", d.body()
                )
            )
    return checks


def _create(
    api: HubSpotApi, hs_type: str, name: str, param: str, path: str, body: dict[str, object]
) -> FieldCheck:
    try:
        api.call("property_create", path, "create", hs_type, **{param: body})
    except CrmUnavailable:
        raise
    except CrmError as e:
        if e.status == 409:
            return FieldCheck(hs_type, name, "exists")
        log.debug(  # the setup table shows it with HubSpot's code
            "could not create HubSpot %s %s: %s",
            hs_type,
            name,
            e.code,
            extra={"crm": "hubspot", "object": hs_type, "field": name},
        )
        return FieldCheck(hs_type, name, "failed", f"{e.status} {e.code or ''}: {e.detail or e}")
    # `crmsync setup` prints one line per property; a log line would say it twice.
    log.debug(
        "created HubSpot %s %s",
        hs_type,
        name,
        extra={"crm": "hubspot", "object": hs_type, "field": name},
    )
    return FieldCheck(hs_type, name, "created")


def _difference(d: PropertyDef, have: dict[str, object]) -> str | None:
    problems = []
    if have.get("type") != d.type and not (
        d.type == "enumeration" and have.get("type") == "string"
    ):
        problems.append(f"type is {have.get('type')}, crmsync expects {d.type}")
    if d.options and have.get("type") == "enumeration":
        values = {str(o.get("value")) for o in have.get("options") or [] if isinstance(o, dict)}  # type: ignore[attr-defined]
        lacking = [o for o in d.options if o not in values]
        if lacking:
            problems.append(f"options lack {', '.join(lacking)}")
    return "; ".join(problems) or None
