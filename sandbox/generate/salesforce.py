"""Render the generated org as Salesforce REST records (dataset format, no "attributes").

Ids are `sandbox.common.sf_id(prefix, n)`; `SfIds` computes the same strings
about five times faster (tests check they agree), which matters at a million
contacts. Key prefixes: 001 Account, 003 Contact, 005 User, 006 Opportunity,
00K OpportunityContactRole, 00T Task.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from crmsync.sandbox.common import sf_id

from . import words as W
from .clock import date_of, day_str, sf_datetime
from .model import Account, Owner
from .world import TIER_SF, World

PREFIX = {
    "account": "001",
    "contact": "003",
    "owner": "005",
    "opportunity": "006",
    "contact_role": "00K",
    "task": "00T",
}
OBJECT = {
    "owner": "User",
    "account": "Account",
    "contact": "Contact",
    "opportunity": "Opportunity",
    "contact_role": "OpportunityContactRole",
    "task": "Task",
}

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_PAIRS = [a + b for a in _B62 for b in _B62]
_UP = [1 if "A" <= c <= "Z" else 0 for c in _B62]
_PAIR_BITS = [_UP[i // 62] | (_UP[i % 62] << 1) for i in range(62 * 62)]
_LIMIT = 62**5


class SfIds:
    """`sf_id(prefix, n)` for one prefix, fast for n < 62**5 (916 million)."""

    def __init__(self, prefix: str, pod: str = "5g") -> None:
        self.prefix, self.pod = prefix, pod
        head = prefix + pod
        bits = sum(1 << i for i, ch in enumerate(head) if "A" <= ch <= "Z")
        self._head = head + "00000"  # block 2 of the id is "00000" below the limit
        self._s01 = _SUFFIX[bits] + _SUFFIX[0]

    def __call__(self, n: int) -> str:
        if not 0 <= n < _LIMIT:
            return sf_id(self.prefix, n, self.pod)
        q, r2 = divmod(n, 3844)
        c, r1 = divmod(q, 3844)
        bits = _UP[c] | (_PAIR_BITS[r1] << 1) | (_PAIR_BITS[r2] << 3)
        return f"{self._head}{_B62[c]}{_PAIRS[r1]}{_PAIRS[r2]}{self._s01}{_SUFFIX[bits]}"


class SalesforceRenderer:
    """Turns `World` accounts into (object name, record) pairs."""

    crm = "salesforce"

    def __init__(self, world: World) -> None:
        self.world = world
        self.ids = {kind: SfIds(prefix) for kind, prefix in PREFIX.items()}
        self._owner_ids = [self.ids["owner"](o.k + 1) for o in world.owners]

    def id(self, kind: str, n: int) -> str:
        """CRM id of a neutral number (account index + 1, contact n, ...)."""
        return self.ids[kind](n)

    def owners(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for o in self.world.owners:
            yield "User", self._user(o)

    def _user(self, o: Owner) -> dict[str, Any]:
        ts = sf_datetime(o.created_ms)
        return {
            "Id": self.ids["owner"](o.k + 1),
            "Name": f"{o.first} {o.last}",
            "FirstName": o.first,
            "LastName": o.last,
            "Email": o.email,
            "Username": o.email.replace("@sandbox.test", "@crmsync-sandbox.test"),
            "IsActive": o.active,
            "UserType": "Standard",
            "CreatedDate": ts,
            "LastModifiedDate": ts,
            "SystemModstamp": ts,
        }

    def account(self, acc: Account) -> Iterator[tuple[str, dict[str, Any]]]:
        ids = self.ids
        owners = self._owner_ids
        acc_id = ids["account"](acc.i + 1)
        modified = sf_datetime(acc.modified_ms)
        yield (
            "Account",
            {
                "Id": acc_id,
                "Name": acc.name,
                "Website": acc.website,
                "OwnerId": owners[acc.owner],
                "Tier__c": acc.bad_tier or TIER_SF[acc.tier],
                "Renewal_Date__c": None if acc.renewal_day is None else day_str(acc.renewal_day),
                "Type": "Prospect" if acc.tier == "none" else "Customer",
                "Industry": W.INDUSTRIES[acc.industry],
                "NumberOfEmployees": acc.employees,
                "CreatedDate": sf_datetime(acc.created_ms),
                "LastModifiedDate": modified,
                "SystemModstamp": modified,
            },
        )
        contact_id = ids["contact"]
        person_ids: dict[int, str] = {}
        for p in acc.people:
            modified = sf_datetime(p.modified_ms)
            person_ids[p.n] = pid = contact_id(p.n)
            # a refusal about the sender is HubSpot's record only (words.HARD_BOUNCE_MIX)
            bounced = p.bounce in ("hard", "soft")
            rec = {
                "Id": pid,
                "AccountId": acc_id,  # people are rendered with the account they belong to
                "FirstName": p.first,
                "LastName": p.last,
                "Name": f"{p.first} {p.last}" if p.first else p.last,
                "Email": p.email,
                "Title": p.title or None,
                "Department": p.dept,
                "OwnerId": owners[p.owner],
                "LastActivityDate": None if p.act_ms is None else date_of(p.act_ms),
                "CreatedDate": sf_datetime(p.created_ms),
                "IsEmailBounced": bounced,
                "EmailBouncedReason": p.bounce_reason if bounced else None,
                "EmailBouncedDate": None
                if not bounced or p.bounce_ms is None
                else sf_datetime(p.bounce_ms),
                "HasOptedOutOfEmail": p.opted_out,
                "LastModifiedDate": modified,
                "SystemModstamp": modified,
            }
            if p.bad_date == "string":  # real date fields can't hold junk; text fields can
                rec["Last_Contacted__c"] = "31/02/2026"
            elif p.bad_date == "extreme":
                rec["LastActivityDate"] = "4000-12-31"  # Salesforce's largest date
            if p.text is not None:
                rec["Description"] = p.text
            yield "Contact", rec
        for o in acc.opps:
            opp_id = ids["opportunity"](o.n)
            modified = sf_datetime(o.modified_ms)
            yield (
                "Opportunity",
                {
                    "Id": opp_id,
                    "AccountId": acc_id,
                    "Name": o.name,
                    "StageName": o.stage[0],
                    "IsClosed": o.is_closed,
                    "IsWon": o.is_won,
                    "CloseDate": day_str(o.close_day),
                    "Amount": float(o.amount),
                    "OwnerId": owners[o.owner],
                    "CreatedDate": sf_datetime(o.created_ms),
                    "LastModifiedDate": modified,
                    "SystemModstamp": modified,
                },
            )
            for r in o.roles:
                ts = sf_datetime(max(o.created_ms, r.person.created_ms))
                yield (
                    "OpportunityContactRole",
                    {
                        "Id": ids["contact_role"](r.n),
                        "OpportunityId": opp_id,
                        "ContactId": person_ids[r.person.n],
                        "Role": r.role,
                        "IsPrimary": r.primary,
                        "CreatedDate": ts,
                        "LastModifiedDate": ts,
                        "SystemModstamp": ts,
                    },
                )
        for t in acc.tasks:
            ts = sf_datetime(t.at_ms)
            yield (
                "Task",
                {
                    "Id": ids["task"](t.n),
                    "WhoId": person_ids[t.person.n],
                    "WhatId": acc_id,
                    "AccountId": acc_id,
                    "OwnerId": owners[t.owner],
                    "Subject": "Call",
                    "TaskSubtype": "Call",
                    "ActivityDate": date_of(t.at_ms),
                    "Status": "Completed",
                    "Priority": "Normal",
                    "IsClosed": True,
                    "CreatedDate": ts,
                    "LastModifiedDate": ts,
                    "SystemModstamp": ts,
                },
            )
