"""Builders of connector output (CrmRecord, Page) for the state tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from crmsync.state.model import CrmRecord, ObjectType, Page

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
CRM = "salesforce"


def at(minutes: int = 0) -> datetime:
    return T0 + timedelta(minutes=minutes)


def record(
    obj: ObjectType,
    id: str,
    *,
    minute: int = 0,
    deleted: bool = False,
    merged_into: str | None = None,
    owned: dict[str, Any] | None = None,
    **values: Any,
) -> CrmRecord:
    return CrmRecord(
        object=obj,
        id=id,
        modified_at=at(minute),
        deleted=deleted,
        values=values,
        raw={"Id": id, **{k: str(v) for k, v in values.items()}},
        owned=owned or {},
        merged_into=merged_into,
    )


def account(id: str, name: str = "Acme", domain: str | None = "acme.test", **kw: Any) -> CrmRecord:
    kw.setdefault("owner_id", "U1")
    return record(ObjectType.ACCOUNT, id, name=name, domain=domain, **kw)


def contact(
    id: str,
    account_id: str | None = "A1",
    first: str = "Ada",
    last: str = "Lovelace",
    email: str | None = None,
    title: str | None = "CTO",
    **kw: Any,
) -> CrmRecord:
    kw.setdefault("created_at", datetime(2025, 1, 1, tzinfo=UTC))
    kw.setdefault("email_bounced", False)
    return record(
        ObjectType.CONTACT,
        id,
        account_id=account_id,
        first_name=first,
        last_name=last,
        email=email or f"{id.lower()}@acme.test",
        title=title,
        **kw,
    )


def opportunity(id: str, account_id: str = "A1", **kw: Any) -> CrmRecord:
    kw.setdefault("is_closed", False)
    kw.setdefault("close_date", date(2026, 9, 30))
    kw.setdefault("amount", 1000.0)
    return record(
        ObjectType.OPPORTUNITY,
        id,
        account_id=account_id,
        name=f"Deal {id}",
        stage="Negotiation",
        **kw,
    )


def role(
    id: str, contact_id: str, opportunity_id: str | None = "O1", role: str = "Champion", **kw: Any
) -> CrmRecord:
    return record(
        ObjectType.CONTACT_ROLE,
        id,
        contact_id=contact_id,
        opportunity_id=opportunity_id,
        role=role,
        is_primary=False,
        **kw,
    )


def owner(id: str = "U1", **kw: Any) -> CrmRecord:
    return record(
        ObjectType.OWNER, id, name="Olive Owner", email="olive@crm.test", active=True, **kw
    )


def page(*records: CrmRecord, cursor: dict[str, Any] | None = None) -> Page:
    obj = records[0].object if records else ObjectType.CONTACT
    return Page(object=obj, records=list(records), cursor=cursor)
