"""Builders for rule tests: an account, its contacts and deals, in one line each.

Defaults describe a healthy contact of a growth account "Acme" (acme.com) as
of AS_OF: created 400 days ago, active 10 days ago, a valid work email.
Override any field by keyword; `days_ago(n)` gives datetimes relative to AS_OF.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from crmsync import rules
from crmsync.state.model import (
    Account,
    AccountView,
    Contact,
    ContactChange,
    ContactRole,
    Elsewhere,
    Flag,
    Opportunity,
)

AS_OF = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
CRM = "salesforce"
ACCOUNT_ID = "001A"


def days_ago(n: float) -> datetime:
    return AS_OF - timedelta(days=n)


def day_ago(n: int) -> date:
    return AS_OF.date() - timedelta(days=n)


def account(**kw: Any) -> Account:
    base: dict[str, Any] = dict(
        crm=CRM, id=ACCOUNT_ID, name="Acme", domain="acme.com", tier="Growth", owner_id="005U"
    )
    base.update(kw)
    return Account(**base)


_FIRST = ["Ada", "Ben", "Cleo", "Dev", "Eva", "Finn", "Gus", "Hana", "Ivo", "Jo", "Kai", "Lia"]


def contact(cid: str = "003A", **kw: Any) -> Contact:
    n = sum(map(ord, cid)) % len(_FIRST)
    first = kw.pop("first_name", _FIRST[n])
    last = kw.pop("last_name", f"Tester{cid[-2:]}")
    base: dict[str, Any] = dict(
        crm=CRM,
        id=cid,
        account_id=ACCOUNT_ID,
        first_name=first,
        last_name=last,
        email=f"{first.lower()}.{last.lower()}@acme.com",
        title="Director",
        created_at=days_ago(400),
        last_activity_at=days_ago(10),
    )
    base.update(kw)
    return Contact(**base)


def opp(oid: str = "006A", **kw: Any) -> Opportunity:
    base: dict[str, Any] = dict(
        crm=CRM,
        id=oid,
        account_id=ACCOUNT_ID,
        name=f"Deal {oid}",
        stage="Negotiation",
        is_closed=False,
        is_won=False,
        close_date=day_ago(-200),
    )
    base.update(kw)
    return Opportunity(**base)


def won(oid: str = "006W", days: int = 30, **kw: Any) -> Opportunity:
    kw = {"stage": "Closed Won", "close_date": day_ago(days), **kw}
    return opp(oid, is_closed=True, is_won=True, **kw)


def lost(oid: str = "006L", days: int = 30, **kw: Any) -> Opportunity:
    kw = {"stage": "Closed Lost", "close_date": day_ago(days), **kw}
    return opp(oid, is_closed=True, is_won=False, **kw)


def role(
    contact_id: str, name: str | None, opportunity_id: str | None = "006A", **kw: Any
) -> ContactRole:
    base: dict[str, Any] = dict(
        crm=CRM,
        id=kw.pop("id", f"00K{contact_id}{opportunity_id}{name}"),
        opportunity_id=opportunity_id,
        contact_id=contact_id,
        role=name,
    )
    base.update(kw)
    return ContactRole(**base)


def change(
    contact_id: str, field: str, old: str | None, new: str | None, seen: float = 5
) -> ContactChange:
    return ContactChange(
        crm=CRM, contact_id=contact_id, field=field, old=old, new=new, seen_at=days_ago(seen)
    )


def elsewhere(
    contact_id: str,
    other_account_id: str = "001G",
    name: str | None = "Globex",
    how: str = "moved",
    other_contact_id: str | None = None,
) -> Elsewhere:
    return Elsewhere(
        contact_id=contact_id,
        other_contact_id=other_contact_id or contact_id,
        other_account_id=other_account_id,
        other_account_name=name,
        how=how,
    )


def view(
    contacts: Iterable[Contact] = (),
    *,
    acct: Account | None = None,
    opportunities: Iterable[Opportunity] = (),
    roles: Iterable[ContactRole] = (),
    history: Iterable[ContactChange] = (),
    elsewhere: Iterable[Elsewhere] = (),
    former: Iterable[Contact] = (),
    **account_kw: Any,
) -> AccountView:
    return AccountView(
        account=acct or account(**account_kw),
        contacts=tuple(contacts),
        opportunities=tuple(opportunities),
        roles=tuple(roles),
        history=tuple(history),
        elsewhere=tuple(elsewhere),
        former_contacts=tuple(former),
    )


def healthy_team(n: int = 3, prefix: str = "003T") -> list[Contact]:
    """n engaged contacts, none of them flagged by anything."""
    return [contact(f"{prefix}{i}") for i in range(n)]


def champions(prefix: str = "003T") -> list[ContactRole]:
    """Economic Buyer and Champion held by the first two of `healthy_team`."""
    return [role(f"{prefix}0", "Economic Buyer"), role(f"{prefix}1", "Champion")]


def run(
    v: AccountView, settings: rules.RuleSettings | None = None, as_of: datetime = AS_OF, **kw: Any
) -> rules.AccountResult:
    return rules.evaluate_account(v, settings or rules.RuleSettings(), as_of, **kw)


def flags(result: rules.AccountResult, rule: str) -> list[Flag]:
    return [f for f in result.flags if f.rule == rule]


def flagged_ids(result: rules.AccountResult, rule: str) -> list[str]:
    return [f.subject_id for f in flags(result, rule)]


def settings(**tables: dict[str, Any]) -> rules.RuleSettings:
    """RuleSettings from TOML-like tables: settings(stale_contact={"growth_days": 30})."""
    return rules.RuleSettings.from_tables(tables)


def hubspot(v: AccountView) -> AccountView:
    """The same view as if it came from HubSpot (crm field only)."""

    def swap(x: Any) -> Any:
        return dataclasses.replace(x, crm="hubspot") if hasattr(x, "crm") else x

    return AccountView(
        account=swap(v.account),
        contacts=tuple(map(swap, v.contacts)),
        opportunities=tuple(map(swap, v.opportunities)),
        roles=tuple(map(swap, v.roles)),
        history=tuple(map(swap, v.history)),
        elsewhere=v.elsewhere,
        former_contacts=tuple(map(swap, v.former_contacts)),
    )


def zoo() -> list[AccountView]:
    """A small org with every case of docs/design.md and issue 5, for whole-pipeline tests."""
    acme = view(
        [
            # healthy, Economic Buyer
            contact("003A1", first_name="Ada", last_name="Lovelace", title="CFO"),
            # stale (growth 120)
            contact("003A2", first_name="Ben", last_name="Okri", last_activity_at=days_ago(150)),
            # created yesterday
            contact(
                "003A3",
                first_name="Cleo",
                last_name="Ng",
                created_at=days_ago(1),
                last_activity_at=None,
            ),
            # on the edge
            contact("003A4", first_name="Dev", last_name="Rao", last_activity_at=days_ago(120)),
            # hard bounce
            contact(
                "003A5",
                first_name="Eva",
                last_name="Stone",
                email_bounced=True,
                bounce_reason="550 5.1.1 user unknown",
                bounced_at=days_ago(20),
                last_activity_at=days_ago(30),
            ),
            # bounced but active since
            contact(
                "003A6",
                first_name="Finn",
                last_name="Hale",
                email_bounced=True,
                bounce_reason="550 5.1.1",
                bounced_at=days_ago(20),
                last_activity_at=days_ago(2),
            ),
            # role address
            contact("003A7", first_name="Gus", last_name="Info", email="info@acme.com"),
            # IDN, valid
            contact("003A8", first_name="Hana", last_name="Sato", email="hana@bücher.de"),
            # soft once
            contact(
                "003A9",
                first_name="Ivo",
                last_name="Marsh",
                email_bounced=True,
                bounce_reason="452 4.2.2 mailbox full",
                bounced_at=days_ago(3),
            ),
            # title false positive
            contact("003B1", first_name="Jo", last_name="Leftwich", title="Leftwich Exec"),
            # departed champion
            contact(
                "003B2",
                first_name="Kai",
                last_name="Moor",
                title="Former VP Sales",
                last_activity_at=days_ago(200),
            ),
            # no email, snoozed
            contact(
                "003B3",
                first_name="Lia",
                last_name="Quill",
                email=None,
                exemption="snooze until 2026-06-01",
            ),
            # never active
            contact(
                "003B4",
                first_name="Max",
                last_name="Roe",
                last_activity_at=None,
                created_at=days_ago(900),
            ),
            # lost-only role
            contact(
                "003B5",
                first_name="Nia",
                last_name="Vale",
                email="nia@globex.com",
                left_company=True,
            ),
        ],
        opportunities=[
            opp("006A", name="Acme renewal", close_date=day_ago(-90)),
            lost("006L", name="Acme upsell"),
        ],
        roles=[
            role("003A1", "Economic Buyer", "006A"),
            role("003B2", "Champion", "006A"),
            role("003B5", "Champion", "006L"),
            role("003M1", "Executive Sponsor", "006A"),
        ],
        history=[
            change("003M1", "account_id", "001A", "001G", seen=12),
            change("003M1", "email", "mo@acme.com", "mo@globex.com", seen=12),
            change("003B5", "email", "nia@acme.com", "nia@globex.com", seen=40),
        ],
        elsewhere=[elsewhere("003M1", "001G", "Globex", "moved")],
        former=[
            contact(
                "003M1", account_id="001G", first_name="Mo", last_name="Pike", email="mo@globex.com"
            )
        ],
        tier="Growth",
    )
    globex = view(
        [
            contact(
                "003G1", account_id="001G", first_name="Mo", last_name="Pike", email="mo@globex.com"
            )
        ],
        acct=account(id="001G", name="Globex", domain="globex.com", tier="tier_1"),
    )
    quiet = view(
        healthy_team(3, prefix="003Q"),
        acct=account(
            id="001Q", name="Quietly Fine", tier="Maintenance", exemption="single_threaded_account"
        ),
    )
    return [acme, globex, quiet]
