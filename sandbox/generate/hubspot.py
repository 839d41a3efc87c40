"""Render the generated org as HubSpot CRM v3 records (dataset format).

Ids are numeric strings in a distinct range per object type, so an id alone
says what it is and never collides across types: owners 50,000,001+,
companies 100,000,001+, contacts 200,000,001+, deals 300,000,001+,
tasks 400,000,001+ (the number after the base is the same neutral number the
Salesforce rendering uses). Property values are strings; unset properties are
left out, as HubSpot answers null for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from . import words as W
from .clock import day_str, hs_datetime, hs_midnight
from .model import Account, Owner
from .world import TIER_HS, World

BASE = {
    "owner": 50_000_000,
    "account": 100_000_000,
    "contact": 200_000_000,
    "opportunity": 300_000_000,
    "task": 400_000_000,
}
USER_ID_BASE = 9_000_000
OBJECT = {
    "owner": "owners",
    "account": "companies",
    "contact": "contacts",
    "opportunity": "deals",
    "task": "tasks",
}


class HubSpotRenderer:
    """Turns `World` accounts into (object type, record) pairs."""

    crm = "hubspot"

    def __init__(self, world: World) -> None:
        self.world = world
        self._owner_ids = [str(BASE["owner"] + o.k + 1) for o in world.owners]

    def id(self, kind: str, n: int) -> str:
        """CRM id of a neutral number; contact roles are association labels, not records."""
        return str(BASE[kind] + n)

    def owners(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for o in self.world.owners:
            yield "owners", self._owner(o)

    def _owner(self, o: Owner) -> dict[str, Any]:
        ts = hs_datetime(o.created_ms)
        return {
            "id": str(BASE["owner"] + o.k + 1),
            "email": o.email,
            "firstName": o.first,
            "lastName": o.last,
            "userId": USER_ID_BASE + o.k + 1,
            "userIdIncludingInactive": USER_ID_BASE + o.k + 1,
            "type": "PERSON",
            "archived": not o.active,
            "createdAt": ts,
            "updatedAt": ts,
        }

    def account(self, acc: Account) -> Iterator[tuple[str, dict[str, Any]]]:
        company_id = str(BASE["account"] + acc.i + 1)
        owners, contact_base = self._owner_ids, BASE["contact"]
        person_ids: dict[int, str] = {}
        props: dict[str, Any] = {
            "name": acc.name,
            "domain": acc.domain,
            "hubspot_owner_id": owners[acc.owner],
            "industry": W.HS_INDUSTRIES[acc.industry],
            "numberofemployees": str(acc.employees),
            "lifecyclestage": "opportunity" if acc.tier == "none" else "customer",
            "createdate": hs_datetime(acc.created_ms),
            "hs_lastmodifieddate": hs_datetime(acc.modified_ms),
        }
        tier = acc.bad_tier and "tier_9" or TIER_HS[acc.tier]
        if tier:
            props["hs_ideal_customer_profile"] = tier
        if acc.renewal_day is not None:
            props["renewal_date"] = day_str(acc.renewal_day)
        yield "companies", {"id": company_id, "properties": props, "associations": {}}
        for p in acc.people:
            person_ids[p.n] = pid = str(contact_base + p.n)
            props = {
                "lastname": p.last,
                "hubspot_owner_id": owners[p.owner],
                "associatedcompanyid": company_id,
                "department": p.dept,
                "hs_lead_status": p.lead_status,
                "lifecyclestage": "customer",
                "hs_email_optout": "true" if p.opted_out else "false",
                "createdate": hs_datetime(p.created_ms),
                "lastmodifieddate": hs_datetime(p.modified_ms),
            }
            if p.first is not None:
                props["firstname"] = p.first
            if p.email is not None:
                props["email"] = p.email
            if p.title:
                props["jobtitle"] = p.title
            if p.act_ms is not None:
                props["notes_last_contacted"] = hs_datetime(p.act_ms)
            if p.bounce is not None:
                props["hs_email_bounce"] = "1"
            if p.bounce_enum is not None:
                props["hs_email_hard_bounce_reason_enum"] = p.bounce_enum
                props["hs_email_hard_bounce_reason"] = p.bounce_reason
            if p.buying_role is not None:
                props["hs_buying_role"] = p.buying_role
            if p.bad_date == "string":
                props["notes_last_contacted"] = "not-a-date"
            elif p.bad_date == "extreme":
                props["notes_last_contacted"] = "4000-12-31T00:00:00.000Z"
            if p.text is not None:
                props["message"] = p.text
            yield (
                "contacts",
                {
                    "id": pid,
                    "properties": props,
                    "associations": {"companies": [{"id": company_id, "label": "primary"}]},
                },
            )
        for o in acc.opps:
            contacts = []
            for r in o.roles:
                label = None
                if r.role is not None:
                    label = W.HS_ROLE[r.role][0] if r.role in W.HS_ROLE else r.role
                contacts.append({"id": person_ids[r.person.n], "label": label})
            yield (
                "deals",
                {
                    "id": str(BASE["opportunity"] + o.n),
                    "properties": {
                        "dealname": o.name,
                        "dealstage": o.stage[1],
                        "pipeline": "default",
                        "closedate": hs_midnight(o.close_day),
                        "amount": str(o.amount),
                        "hs_is_closed": "true" if o.is_closed else "false",
                        "hs_is_closed_won": "true" if o.is_won else "false",
                        "hubspot_owner_id": owners[o.owner],
                        "createdate": hs_datetime(o.created_ms),
                        "hs_lastmodifieddate": hs_datetime(o.modified_ms),
                    },
                    "associations": {
                        "companies": [{"id": company_id, "label": "primary"}],
                        "contacts": contacts,
                    },
                },
            )
        for t in acc.tasks:
            ts = hs_datetime(t.at_ms)
            yield (
                "tasks",
                {
                    "id": str(BASE["task"] + t.n),
                    "properties": {
                        "hs_timestamp": ts,
                        "hs_task_subject": "Call",
                        "hs_task_status": "COMPLETED",
                        "hs_task_type": "CALL",
                        "hs_task_priority": "MEDIUM",
                        "hubspot_owner_id": owners[t.owner],
                        "createdate": ts,
                        "hs_lastmodifieddate": ts,
                    },
                    "associations": {
                        "contacts": [{"id": person_ids[t.person.n], "label": None}],
                        "companies": [{"id": company_id, "label": None}],
                    },
                },
            )
