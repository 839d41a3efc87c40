"""Property history of the HubSpot emulator: who set each value, newest first.

Every write records, per property whose value changed, one entry in HubSpot's
`ValueWithTimestamp` shape (api-facts §1; hubspot-api-client 12
`crm/*/models/value_with_timestamp.py`):

    {"value": "99", "timestamp": "2026-11-01T09:00:00.000Z", "sourceType": "CRM_UI",
     "sourceId": "userId:28604240", "updatedByUserId": 28604240}

Sources, as HubSpot reports them (real responses: HubSpot/hubspot-api-nodejs#154
for a UI edit, ballerina-platform/module-ballerinax-hubspot.crm.engagements.email
`ballerina/tests/mock_service.bal` for a private app's write; the sourceType
enum in HubSpot's generated SDKs for the rest):

    API write with the private app token  INTEGRATION, sourceId = PRIVATE_APP_ID
    API write with an OAuth access token  INTEGRATION, sourceId = OAUTH_APP_ID
    in-process update(source="person")    CRM_UI, sourceId "userId:N", updatedByUserId N
    source="bulk" / "mobile"              CRM_UI_BULK_ACTION / MOBILE_IOS (a person too)
    source="workflow", workflow_revert    AUTOMATION_PLATFORM, sourceId = the flow id
    source="import"                       IMPORT, sourceId = the import id
    source="integration"                  INTEGRATION, another app's id (OTHER_APP_ID)
    source="api"                          INTEGRATION, PRIVATE_APP_ID (as crmsync's own write)

Values loaded from a dataset have no recorded history: they read as one
IMPORT entry stamped with the record's create date. The emulator keeps the
newest HISTORY_MAX entries per property (HubSpot's own bound is not
documented in the sources we have).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PRIVATE_APP_ID = "4201337"  # the sandbox private app (token pat-sandbox-0000)
OAUTH_APP_ID = "4201338"  # the sandbox OAuth app (sandbox-client-id)
OTHER_APP_ID = "7777777"  # "another integration"
WORKFLOW_ID = "90001"
IMPORT_ID = "31337"
DATASET_SOURCE = {"sourceType": "IMPORT", "sourceId": "sandbox-dataset"}
HISTORY_MAX = 20

Source = dict[str, Any]


def integration(oauth: bool) -> Source:
    """The source of an API write made with this kind of token."""
    return {"sourceType": "INTEGRATION", "sourceId": OAUTH_APP_ID if oauth else PRIVATE_APP_ID}


def source(kind: str, user_id: int | str | None = None) -> Source:
    """The source of an in-process write (the control API's `source=`)."""
    if kind in ("person", "bulk", "mobile"):
        uid = int(user_id or 1)
        stype = {"person": "CRM_UI", "bulk": "CRM_UI_BULK_ACTION", "mobile": "MOBILE_IOS"}[kind]
        return {"sourceType": stype, "sourceId": f"userId:{uid}", "updatedByUserId": uid}
    if kind == "workflow":
        return {"sourceType": "AUTOMATION_PLATFORM", "sourceId": str(user_id or WORKFLOW_ID)}
    if kind == "import":
        return {"sourceType": "IMPORT", "sourceId": str(user_id or IMPORT_ID)}
    if kind == "integration":
        return {"sourceType": "INTEGRATION", "sourceId": str(user_id or OTHER_APP_ID)}
    if kind == "api":
        return integration(False)
    raise ValueError(
        f"unknown source {kind!r}: use person, bulk, mobile, workflow, import, integration or api"
    )


def record(
    history: dict[str, list[dict[str, Any]]],
    before: Mapping[str, Any],
    props: Mapping[str, Any],
    stamp: str,
    src: Source,
    created: str,
) -> None:
    """Add an entry per property whose value this write changed (newest first)."""
    for name, value in props.items():
        old = before.get(name)
        if old == value:
            continue  # an unchanged value adds no entry
        if name not in history and old not in (None, ""):
            history[name] = [{"value": str(old), "timestamp": created, **DATASET_SOURCE}]
        entries = history.setdefault(name, [])
        entries.insert(0, {"value": "" if value is None else str(value), "timestamp": stamp, **src})
        del entries[HISTORY_MAX:]


def entries(
    history: Mapping[str, list[dict[str, Any]]] | None, name: str, value: Any, created: str
) -> list[dict[str, Any]]:
    """The history of one property as a read returns it (newest first)."""
    found = list((history or {}).get(name) or [])
    if found:
        return found
    if value in (None, ""):
        return []
    return [{"value": str(value), "timestamp": created, **DATASET_SOURCE}]
