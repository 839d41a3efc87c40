"""`crmsync setup` for Salesforce: crmsync's custom fields, usable end to end.

Wanted fields (names from fields.owned_names, defaults from issue 6): the
Account coverage fields, the Contact status and reason, the Task key
(created on Activity, Text(80), asked for as External ID and unique: the
upsert key that keeps task writes idempotent), `Crmsync_Signature__c`
(Text(255)) on Account, Contact and Task (Activity), which says which values
crmsync wrote (docs/ownership.md), and, when `exempt_field` is a custom field,
the exemption field on Account and Contact. None is ever required (a required
field cannot be granted by field-level security, api-facts §13).

1. Each object is described afresh; a field describe lists is "exists";
   otherwise it is created through the Tooling API (`POST
   tooling/sobjects/CustomField`) and reported "created", or "missing" in a dry
   run, or "failed" with Salesforce's code. A field that exists but the
   integration user cannot see (Salesforce answers DUPLICATE_DEVELOPER_NAME) is
   "exists" and gets granted in step 2. Whether an org lets an Activity field
   be an External ID is not established (api-facts §12): if the org refuses
   it, the key is created plain.
2. Field-level security (access.py): a field created over the API is visible
   to nobody until granted, so setup keeps two permission sets: one granting
   the integration user edit access, assigned by setup, one granting account
   managers read access, assigned to `[salesforce] grant_read_to` or else
   explained in the output.
3. The objects are described again: a field still invisible fails with the
   fix, and the Task key line says what describe found: an External ID (tasks
   are upserted by it) or not (write-back looks a task up by its key before
   creating it: push.py).

Running it twice changes nothing: the second run finds every field, grant and
assignment.
"""

from __future__ import annotations

import logging
from typing import Any

from crmsync.connectors.errors import AuthFailed, CrmError, CrmUnavailable, QuotaExhausted
from crmsync.connectors.salesforce.access import ensure_access, grants_for
from crmsync.connectors.salesforce.client import SalesforceClient, Settings
from crmsync.connectors.salesforce.fields import FIELD_SPECS, FieldInfo, field_infos, owned_names
from crmsync.state.model import FieldCheck

log = logging.getLogger(__name__)

METADATA_OBJECT = {"Account": "Account", "Contact": "Contact", "Task": "Activity"}
DUPLICATE_CODES = ("DUPLICATE_DEVELOPER_NAME", "DUPLICATE_VALUE", "DUPLICATE_NAME")
STOPS = (CrmUnavailable, AuthFailed, QuotaExhausted)
KEY_UPSERT = "an External ID: tasks are upserted by it"
KEY_LOOKUP = (
    "not an External ID in this org: crmsync looks a task up by this key before creating it "
    "(one query per 100 new tasks), so none is created twice"
)


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
    wanted = wanted_fields(settings)
    described = _describe(client, {s for s, _, _ in wanted})
    checks: dict[tuple[str, str], FieldCheck] = {}
    for sobject, key, name in wanted:
        info = described[sobject].get(name.lower())
        if info is not None and (info.updateable or key == "exemption"):
            checks[(sobject, name)] = FieldCheck(sobject, name, "exists")
        elif info is not None:
            checks[(sobject, name)] = FieldCheck(
                sobject, name, "exists", "read-only for the integration user: granted edit below"
            )
        elif dry_run:
            checks[(sobject, name)] = FieldCheck(
                sobject, name, "missing", "would be created by `crmsync setup`"
            )
        else:
            checks[(sobject, name)] = _create(client, sobject, key, name)
    usable = [(s, k, n) for s, k, n in wanted if checks[(s, n)].status != "failed"]
    access = _access(client, settings, usable, dry_run=dry_run)
    changed = any(c.status != "exists" or c.detail for c in checks.values()) or any(
        c.status != "exists" for c in access
    )
    if not dry_run and changed:
        described = _describe(client, {s for s, _, _ in wanted})  # as granted now
        for sobject, _, name in usable:
            if name.lower() not in described[sobject]:
                checks[(sobject, name)] = FieldCheck(
                    sobject, name, "failed",
                    "the integration user still cannot see it: grant it field-level security "
                    "(the permission set crmsync_integration) and run `crmsync setup` again",
                )  # fmt: skip
    key = owned_names(settings, "Task")["key"]
    info = described["Task"].get(key.lower())
    if info is not None and ("Task", key) in checks:
        check = checks[("Task", key)]
        found = KEY_UPSERT if info.external_id else KEY_LOOKUP
        detail = f"{check.detail}; {found}" if check.detail else found
        checks[("Task", key)] = FieldCheck(check.object, check.field, check.status, detail)
        log.info(
            "salesforce task key checked",
            extra={"crm": "salesforce", "field": key, "external_id": info.external_id},
        )
    for sobject in described:
        client.forget_describe(sobject)  # the next pull sees the fields as they are now
    return [*checks.values(), *access]


def _describe(client: SalesforceClient, sobjects: set[str]) -> dict[str, dict[str, FieldInfo]]:
    out = {}
    for sobject in sorted(sobjects):
        client.forget_describe(sobject)
        out[sobject] = field_infos(client.describe(sobject))
    return out


def _access(
    client: SalesforceClient,
    settings: Settings,
    usable: list[tuple[str, str, str]],
    *,
    dry_run: bool,
) -> list[FieldCheck]:
    try:
        return ensure_access(client, settings, grants_for(settings, usable), dry_run=dry_run)
    except STOPS:
        raise
    except CrmError as exc:  # e.g. the integration user may not read permission sets
        return [
            FieldCheck(
                "PermissionSet",
                "crmsync_integration",
                "failed",
                f"{exc.code or exc.status}: could not read or write permission sets; grant "
                "crmsync's fields field-level security by hand",
            )
        ]


def _create(client: SalesforceClient, sobject: str, key: str, name: str) -> FieldCheck:
    if not name.endswith("__c"):
        return FieldCheck(
            sobject,
            name,
            "failed",
            "not a custom field name (must end in __c); fix [salesforce] fields",
        )
    metadata: dict[str, Any] = dict(FIELD_SPECS[key])
    if key == "exemption" and name != "Crmsync_Exempt__c":
        metadata["label"] = name[: -len("__c")].replace("_", " ")
    created = _tooling(client, sobject, name, metadata)
    if isinstance(created, FieldCheck) or created is None:
        return created or FieldCheck(sobject, name, "created")
    if key == "key" and (metadata.get("externalId") or metadata.get("unique")):
        # The org may not allow an External ID on an Activity field (api-facts §12): plain
        # then, and write-back looks tasks up by key instead of upserting.
        plain = {k: v for k, v in metadata.items() if k not in ("externalId", "unique", "caseSensitive")}
        again = _tooling(client, sobject, name, plain)
        if again is None:
            return FieldCheck(
                sobject, name, "created", f"without External ID (the org refused it: {created.code})"
            )
        if isinstance(again, FieldCheck):
            return again
        created = again
    log.debug(  # the setup table shows it with Salesforce's code
        "could not create salesforce field",
        extra={"crm": "salesforce", "object": sobject, "field": name, "code": created.code},
    )
    return FieldCheck(sobject, name, "failed", f"{created.code}: {created.detail}")


def _tooling(
    client: SalesforceClient, sobject: str, name: str, metadata: dict[str, Any]
) -> FieldCheck | CrmError | None:
    """Create one field: None when created, "exists" when it already was, else the error."""
    body = {"FullName": f"{METADATA_OBJECT[sobject]}.{name}", "Metadata": metadata}
    try:
        client.call(
            "tooling",
            lambda sf: sf.toolingexecute("sobjects/CustomField", method="POST", data=body),
        )
    except STOPS:
        raise
    except CrmError as exc:
        if exc.code in DUPLICATE_CODES or "already" in (exc.detail or "").lower():
            return FieldCheck(
                sobject, name, "exists", "existed, hidden from the integration user: granted below"
            )
        return exc
    # `crmsync setup` prints one line per field; a log line would say it twice.
    log.debug(
        "created salesforce field", extra={"crm": "salesforce", "object": sobject, "field": name}
    )
    return None
