"""Shared pieces of the HubSpot connector tests: fake time, datasets, a sandbox + connector pair.

(Named test_*.py so it sits with the files it serves; it holds no tests.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crmsync.connectors.base import Secret
from crmsync.connectors.hubspot import HubSpotConnector, Settings
from crmsync.connectors.retry import RetryPolicy
from crmsync.sandbox.hubspot import HubSpotSandbox
from crmsync.state.model import CrmRecord, ObjectType, Page
from tests.clock import crm_now, crm_time

OLD = "2025-01-15T10:00:00.000Z"  # dataset records' created/modified time, long before "now"
TOKEN = "pat-sandbox-0000"


def serve_dates_from(monkeypatch: Any, clock: FakeTime) -> None:
    """Make the emulator's HTTP Date header follow the fake clock, as its record times do.

    werkzeug stamps Date from the real clock; HubSpot's Date and record timestamps come from one
    clock, which the connector relies on for its cursor cap (O5)."""
    from email.utils import formatdate

    from werkzeug.serving import WSGIRequestHandler

    monkeypatch.setattr(
        WSGIRequestHandler,
        "date_time_string",
        lambda self, timestamp=None: formatdate(
            clock.t if timestamp is None else timestamp, usegmt=True
        ),
    )


class FakeTime:
    """One clock for the emulator and the connector; sleeping advances it, never really sleeps."""

    def __init__(self, start: float | None = None) -> None:
        self.t = crm_time() if start is None else start
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(0.0, seconds)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)


def dataset(
    contacts: int = 5,
    companies: int = 2,
    deals: int = 1,
    *,
    big_company_contacts: int = 0,
) -> dict[str, Any]:
    """Companies 1..n, then contacts, then deals, then tasks (ids in that order)."""
    hs: dict[str, Any] = {"owners": [], "companies": [], "contacts": [], "deals": [], "tasks": []}
    hs["owners"] = [
        {
            "id": "501",
            "email": "ana@corp.test",
            "firstName": "Ana",
            "lastName": "Li",
            "userId": 1,
            "archived": False,
        },
        {
            "id": "502",
            "email": "bo@corp.test",
            "firstName": "Bo",
            "lastName": "Ek",
            "userId": 2,
            "archived": True,
        },
    ]
    nid = 1
    company_ids = []
    for i in range(companies):
        cid = str(nid)
        nid += 1
        company_ids.append(cid)
        hs["companies"].append(
            {
                "id": cid,
                "properties": {
                    "name": f"Company {i}",
                    "domain": f"c{i}.test",
                    "hubspot_owner_id": "501",
                    "hs_ideal_customer_profile": "tier_1",
                    "createdate": OLD,
                    "hs_lastmodifieddate": OLD,
                },
                "associations": {},
            }
        )
    contact_ids = []
    for i in range(contacts):
        cid = str(nid)
        nid += 1
        contact_ids.append(cid)
        company = company_ids[i % len(company_ids)] if company_ids else None
        props = {
            "email": f"p{i}@c.test",
            "firstname": f"F{i}",
            "lastname": f"L{i}",
            "jobtitle": "VP",
            "createdate": OLD,
            "lastmodifieddate": OLD,
            "hs_lastmodifieddate": OLD,
            "notes_last_contacted": "2025-01-01T00:00:00Z",
        }
        if i % 7 == 0:
            props["hs_buying_role"] = "CHAMPION;BUDGET_HOLDER"
        if i % 11 == 0:
            props["hs_email_hard_bounce_reason_enum"] = "UNKNOWN_USER"
        hs["contacts"].append(
            {
                "id": cid,
                "properties": props,
                "associations": {"companies": [{"id": company, "label": "primary"}]}
                if company
                else {},
            }
        )
    for i in range(big_company_contacts):
        cid = str(nid)
        nid += 1
        contact_ids.append(cid)
        hs["contacts"].append(
            {
                "id": cid,
                "properties": {
                    "email": f"big{i}@c.test",
                    "createdate": OLD,
                    "lastmodifieddate": OLD,
                    "hs_lastmodifieddate": OLD,
                },
                "associations": {"companies": [{"id": company_ids[0], "label": "primary"}]},
            }
        )
    for i in range(deals):
        did = str(nid)
        nid += 1
        people = contact_ids[i * 3 : i * 3 + 3]
        labels = ["Champion", None, "Economic Buyer"]
        hs["deals"].append(
            {
                "id": did,
                "properties": {
                    "dealname": f"Deal {i}",
                    "dealstage": "appointmentscheduled",
                    "pipeline": "default",
                    "amount": "1000",
                    "closedate": "2026-12-31",
                    "createdate": OLD,
                    "hs_lastmodifieddate": OLD,
                },
                "associations": {
                    "companies": [{"id": company_ids[i % len(company_ids)], "label": "primary"}],
                    "contacts": [
                        {"id": c, "label": lab} for c, lab in zip(people, labels, strict=False)
                    ],
                },
            }
        )
    return {"hubspot": hs}


@dataclass
class Pair:
    hs: HubSpotSandbox
    connector: HubSpotConnector
    clock: FakeTime


def settings_for(hs: HubSpotSandbox, **kw: Any) -> Settings:
    base: dict[str, Any] = {"host": hs.url, "token": Secret(TOKEN)}
    base.update(kw)
    return Settings(**base)


def connect(
    hs: HubSpotSandbox, clock: FakeTime, policy: RetryPolicy | None = None, **kw: Any
) -> HubSpotConnector:
    return HubSpotConnector(
        settings_for(hs, **kw),
        sleep=clock.sleep,
        clock=clock.time,
        wall_clock=clock.now,
        policy=policy or RetryPolicy(),
    )


def pull_all(
    connector: HubSpotConnector,
    obj: ObjectType,
    cursor: Any = None,
    *,
    full: bool,
    started_at: datetime | None = None,
    stop_after: int | None = None,
) -> tuple[dict[str, CrmRecord], Any, list[Page]]:
    """Records by id (later pages win, as the mirror's upsert does), the last cursor, the pages."""
    out: dict[str, CrmRecord] = {}
    pages: list[Page] = []
    started = started_at or crm_now()
    for page in connector.pull(obj, cursor, full=full, started_at=started):
        pages.append(page)
        for r in page.records:
            out[r.id] = r
        cursor = page.cursor
        if stop_after is not None and len(pages) >= stop_after:
            break
    return out, cursor, pages


def primary_company(rec: dict[str, Any]) -> str | None:
    items = (rec.get("associations") or {}).get("companies") or []
    for it in items:
        if it.get("label") == "primary":
            return str(it["id"])
    return str(items[0]["id"]) if items else None


def write_token_file(path: Path, value: str) -> Path:
    path.write_text(value + "\n", encoding="utf-8")
    return path


def live(records: dict[str, CrmRecord]) -> Iterator[CrmRecord]:
    return (r for r in records.values() if not r.deleted)
