"""One org in both CRMs, kept in step by HubSpot's native Salesforce integration (issue 16).

`generate()` renders the same people in Salesforce and in HubSpot, record for record
in the same order. `link_natively(dataset)` changes a generated dataset in place into
what a company running both CRMs has:

- HubSpot's Salesforce integration synced part of the org: every `every`-th HubSpot
  contact and company carries the id of its Salesforce record in `salesforcecontactid`
  / `salesforceaccountid` and a `salesforcelastsynctime` (api-facts §24); the rest are
  linked by crmsync only by e-mail or domain;
- marketing reached some people only HubSpot sees: every `reached_every`-th contact
  that is stale in Salesforce (manifest "stale_contact") has a recent
  `notes_last_contacted` in HubSpot, a week before `as_of`;
- marketing mail to some addresses hard-bounced, seen in HubSpot only: every
  `bounced_every`-th contact with an e-mail that bounces in neither CRM gets
  `hs_email_hard_bounce_reason_enum` = UNKNOWN_USER (api-facts §4) in HubSpot.

Returns what it changed (ids of each CRM), for the demo and the tests to check against.
Deterministic: no clock, no randomness.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .clock import epoch_ms, hs_datetime

REACHED_DAYS_BEFORE = 7


def link_natively(
    dataset: dict[str, Any],
    *,
    as_of: datetime,
    every: int = 2,
    reached_every: int = 2,
    bounced_every: int = 25,
) -> dict[str, list[str]]:
    sf, hs = dataset["salesforce"], dataset["hubspot"]
    reached_at = hs_datetime(epoch_ms(as_of - timedelta(days=REACHED_DAYS_BEFORE)))
    synced = str(epoch_ms(as_of - timedelta(days=1)))
    out: dict[str, list[str]] = {
        "linked_contacts": [],
        "linked_companies": [],
        "reached": [],
        "bounced_in_hubspot": [],
    }
    pairs = (
        ("Contact", "contacts", "salesforcecontactid", "linked_contacts"),
        ("Account", "companies", "salesforceaccountid", "linked_companies"),
    )
    for sf_obj, hs_obj, prop, key in pairs:
        for i, (s, h) in enumerate(zip(sf[sf_obj], hs[hs_obj], strict=True)):
            if i % every == 0:
                h["properties"][prop] = s["Id"]
                h["properties"]["salesforcelastsynctime"] = synced
                out[key].append(h["id"])
    stale = set(dataset["manifest"]["salesforce"]["stale_contact"])
    stale_pairs = [
        (s, h) for s, h in zip(sf["Contact"], hs["contacts"], strict=True) if s["Id"] in stale
    ]
    for n, (_s, h) in enumerate(stale_pairs):
        if n % reached_every == 0:
            h["properties"]["notes_last_contacted"] = reached_at
            out["reached"].append(h["id"])
    deliverable = [
        h
        for s, h in zip(sf["Contact"], hs["contacts"], strict=True)
        if s.get("Email")
        and not s.get("IsEmailBounced")
        and h["id"] not in out["reached"]
        and not h["properties"].get("hs_email_hard_bounce_reason_enum")
    ]
    for n, h in enumerate(deliverable):
        if n % bounced_every == bounced_every - 1:
            h["properties"]["hs_email_hard_bounce_reason_enum"] = "UNKNOWN_USER"
            out["bounced_in_hubspot"].append(h["id"])
    return out
