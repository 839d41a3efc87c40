"""`crmsync setup` for Salesforce: check, and unless dry-run create, crmsync's custom fields.

Wanted fields (names from fields.owned_names, defaults from issue 6): the
Account coverage fields, the Contact status and reason, the Task key
(created on Activity, Text(80), External ID, unique: the upsert key that keeps
task writes idempotent), `Crmsync_Signature__c` (Text(255)) on Account,
Contact and Task (Activity), which says which values crmsync wrote
(docs/ownership.md), and, when `exempt_field` is a custom field, the
exemption field on Account and Contact. Each object is described afresh; a
field that describe lists is "exists"; otherwise it is created through the
Tooling API (`POST tooling/sobjects/CustomField`) and reported "created", or
"missing" in a dry run, or "failed" with Salesforce's code. Running it twice
changes nothing: the second run finds every field.

A field created over the API is invisible to describe until the integration
user gets field-level security on it; Salesforce then refuses to create it
again (DUPLICATE_DEVELOPER_NAME), which is reported as "exists" with the fix.
"""

from __future__ import annotations

import logging
from typing import Any

from connectors.errors import AuthFailed, CrmError, CrmUnavailable, QuotaExhausted
from connectors.salesforce.client import SalesforceClient, Settings
from connectors.salesforce.fields import FIELD_SPECS, field_infos, owned_names
from state.model import FieldCheck

log = logging.getLogger(__name__)

METADATA_OBJECT = {"Account": "Account", "Contact": "Contact", "Task": "Activity"}
DUPLICATE_CODES = ("DUPLICATE_DEVELOPER_NAME", "DUPLICATE_VALUE", "DUPLICATE_NAME")


def wanted_fields(settings: Settings) -> list[tuple[str, str, str]]:
    """(sObject, owned key, SF field name) for every field crmsync needs."""
    out: list[tuple[str, str, str]] = []
    for sobject in ("Account", "Contact", "Task"):
        for key, name in owned_names(settings, sobject).items():
            out.append((sobject, key, name))
        if sobject != "Task" and settings.exempt_field.endswith("__c"):
            out.append((sobject, "exemption", settings.exempt_field))
    return out


def ensure_fields(
    client: SalesforceClient, settings: Settings, *, dry_run: bool
) -> list[FieldCheck]:
    checks: list[FieldCheck] = []
    described: dict[str, dict[str, Any]] = {}
    for sobject, key, name in wanted_fields(settings):
        if sobject not in described:
            client.forget_describe(sobject)
            described[sobject] = field_infos(client.describe(sobject))
        if name.lower() in described[sobject]:
            checks.append(FieldCheck(sobject, name, "exists"))
        elif dry_run:
            checks.append(
                FieldCheck(sobject, name, "missing", "would be created by `crmsync setup`")
            )
        else:
            checks.append(_create(client, sobject, key, name))
    for sobject in described:
        client.forget_describe(sobject)  # the next pull sees the new fields
    return checks


def _create(client: SalesforceClient, sobject: str, key: str, name: str) -> FieldCheck:
    if not name.endswith("__c"):
        return FieldCheck(
            sobject,
            name,
            "failed",
            "not a custom field name (must end in __c); fix [salesforce] fields",
        )
    metadata = dict(FIELD_SPECS[key])
    if key != "exemption" or name == "Crmsync_Exempt__c":
        pass
    else:
        metadata["label"] = name[: -len("__c")].replace("_", " ")
    body = {"FullName": f"{METADATA_OBJECT[sobject]}.{name}", "Metadata": metadata}
    try:
        client.call(
            "tooling",
            lambda sf: sf.toolingexecute("sobjects/CustomField", method="POST", data=body),
        )
    except (CrmUnavailable, AuthFailed, QuotaExhausted):
        raise
    except CrmError as exc:
        if exc.code in DUPLICATE_CODES or "already" in (exc.detail or "").lower():
            return FieldCheck(
                sobject,
                name,
                "exists",
                "exists but the integration user cannot see it: grant it field-level security",
            )
        log.debug(  # the setup table shows it with Salesforce's code
            "could not create salesforce field",
            extra={"crm": "salesforce", "object": sobject, "field": name, "code": exc.code},
        )
        return FieldCheck(sobject, name, "failed", f"{exc.code}: {exc.detail}")
    # `crmsync setup` prints one line per field; a log line would say it twice.
    log.debug(
        "created salesforce field", extra={"crm": "salesforce", "object": sobject, "field": name}
    )
    return FieldCheck(sobject, name, "created")
