"""Who changed a property last, from HubSpot's property history (only to explain conflicts).

    POST /crm/v3/objects/{type}/batch/read
    {"inputs": [{"id": ...}, ...], "properties": [...], "propertiesWithHistory": [...]}

Each record comes back with `propertiesWithHistory: {property: [entry, ...]}`,
entries newest first, each `{value, timestamp, sourceType, sourceId?,
sourceLabel?, updatedByUserId?}` (api-facts §1: hubspot-api-client's
`ValueWithTimestamp`; real responses in HubSpot/hubspot-api-nodejs#154 and
ballerina-platform/module-ballerinax-hubspot.crm.engagements.email).
HubSpot caps pages read with history at 50 records; whether batch read is
capped too is not documented, so crmsync sends at most 50 inputs per call
(the harsher reading). Cost: one call per 50 records with a new conflict, per
object type.

The latest entry's source says who (`classify`):

    CRM_UI, CRM_UI_BULK_ACTION, MOBILE_IOS, MOBILE_ANDROID, ...  a person (userId:N)
    AUTOMATION_PLATFORM, WORKFLOWS, AUTOMATION_JOURNEY            a workflow
    INTEGRATION (or API) with another app's sourceId              another integration
    IMPORT                                                         an import
    anything else                                                  unknown

crmsync's own writes are INTEGRATION with its app id, which crmsync is not told:
the history of `crmsync_signature`, which only crmsync writes, gives it away.
A value whose latest change has that source was written by crmsync before it
signed its writes. History only explains; the signature decides ownership.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from crmsync.state.model import ChangeKind, FieldChange

from . import fields as f
from .client import HubSpotApi

log = logging.getLogger(__name__)

HISTORY_BATCH = 50  # inputs per batch read with propertiesWithHistory (harsher reading)

PERSON_SOURCES = frozenset({"CRM_UI", "CRM_UI_BULK_ACTION", "MOBILE_IOS", "MOBILE_ANDROID"})
WORKFLOW_SOURCES = frozenset({"AUTOMATION_PLATFORM", "WORKFLOWS", "AUTOMATION_JOURNEY"})
INTEGRATION_SOURCES = frozenset({"INTEGRATION", "API", "INTEGRATIONS_PLATFORM", "INTEGRATIONS_SYNC"})

_API_PATHS = {
    f.COMPANIES: "crm.companies.batch_api",
    f.CONTACTS: "crm.contacts.batch_api",
    f.TASKS: "crm.objects.tasks.batch_api",
}


def classify(entry: Mapping[str, Any], own_source: str | None = None) -> FieldChange:
    """One history entry -> who made the change."""
    from .fields import parse_datetime

    source = str(entry.get("sourceType") or "").upper()
    source_id = str(entry.get("sourceId") or "")
    try:
        at = parse_datetime(entry.get("timestamp"))
    except (TypeError, ValueError):
        at = None
    user = entry.get("updatedByUserId")
    if user is None and source_id.startswith("userId:"):
        user = source_id.split(":", 1)[1]
    user_id = str(user) if user not in (None, "") else None
    if source in PERSON_SOURCES or source.startswith("MOBILE_"):
        kind = ChangeKind.PERSON
    elif source in WORKFLOW_SOURCES:
        kind = ChangeKind.WORKFLOW
    elif source in INTEGRATION_SOURCES:
        same_app = own_source is not None and source_id == own_source
        kind = ChangeKind.CRMSYNC if same_app else ChangeKind.INTEGRATION
    elif source == "IMPORT":
        kind = ChangeKind.IMPORT
    else:
        kind = ChangeKind.UNKNOWN
    return FieldChange(kind=kind, at=at, user_id=user_id, source=source or None)


def latest_changes(
    api: HubSpotApi, hs_type: str, wanted: Mapping[str, Sequence[str]]
) -> dict[tuple[str, str], FieldChange]:
    """{(record id, property): latest change} for these records' properties.

    `wanted` maps record id -> HubSpot property names. A record HubSpot no longer
    has, or a property without history, is simply absent from the answer.
    """
    out: dict[tuple[str, str], FieldChange] = {}
    ids = sorted(wanted)
    path = _API_PATHS[hs_type]
    for start in range(0, len(ids), HISTORY_BATCH):
        chunk = ids[start : start + HISTORY_BATCH]
        props = sorted({p for i in chunk for p in wanted[i]} | {f.SIGNATURE})
        resp = api.call(
            "history",
            path,
            "read",
            batch_read_input_simple_public_object_id={
                "inputs": [{"id": str(i)} for i in chunk],
                "properties": props,
                "propertiesWithHistory": props,
            },
            archived=False,
        )
        for record in (resp.body or {}).get("results") or []:
            rid = str(record.get("id"))
            history = record.get("propertiesWithHistory") or {}
            own = _own_source(history.get(f.SIGNATURE) or [])
            for prop in wanted.get(rid, ()):
                entries = history.get(prop) or []
                if entries:
                    out[(rid, prop)] = classify(_latest(entries), own)
    return out


def _latest(entries: Iterable[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The newest entry (HubSpot lists newest first; sorted again, not trusted)."""
    listed = list(entries)
    return max(listed, key=lambda e: str(e.get("timestamp") or "")) if listed else {}


def _own_source(entries: Sequence[Mapping[str, Any]]) -> str | None:
    """crmsync's app id: the source of the latest write of its signature property."""
    for entry in sorted(entries, key=lambda e: str(e.get("timestamp") or ""), reverse=True):
        if str(entry.get("sourceType") or "").upper() in INTEGRATION_SOURCES:
            return str(entry.get("sourceId") or "") or None
    return None
