"""The connector contract (contract.py) for Salesforce: simple-salesforce over TLS to a fresh
sandbox org per test."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from contract import ConnectorContract, Org
from simple_salesforce import Salesforce
from simple_salesforce.format import format_soql

from crmsync.connectors.base import Secret
from crmsync.connectors.retry import RetryPolicy
from crmsync.connectors.salesforce import SalesforceConnector, Settings
from crmsync.connectors.salesforce.fields import DEFAULT_OWNED, SOBJECTS
from crmsync.connectors.salesforce.transport import build_session
from crmsync.sandbox.generate import generate
from crmsync.sandbox.salesforce import PASSWORD, SECURITY_TOKEN, USERNAME, SalesforceSandbox
from crmsync.state.model import ObjectType
from tests.clock import crm_now

DATA = generate(seed=21, accounts=4, crms=("salesforce",))


class SalesforceOrg(Org):
    crm = "salesforce"

    def __init__(self, sb: SalesforceSandbox) -> None:
        self.sb = sb
        sf = DATA["salesforce"]
        self.owner_id = next(u["Id"] for u in sf["User"] if u.get("IsActive", True))
        self.account_id = sf["Account"][0]["Id"]
        self.contact_id = next(c["Id"] for c in sf["Contact"] if c["AccountId"] == self.account_id)
        self._client: Salesforce | None = None

    def connector(self, *, renewable: bool = False, bad_credentials: bool = False) -> Any:
        # a password login is renewable: simple-salesforce logs in again on a 401
        settings = Settings(
            login_url=self.sb.url, instance_url=self.sb.url, ca_file=self.sb.ca_file,
            username=USERNAME, password=Secret("wrong" if bad_credentials else PASSWORD),
            security_token=Secret(SECURITY_TOKEN),
        )  # fmt: skip
        return SalesforceConnector(
            settings, sleep=lambda s: None, retry=RetryPolicy(max_attempts=4)
        )

    def now(self) -> datetime:
        return crm_now()

    @property
    def client(self) -> Salesforce:
        if self._client is None:
            session = build_session(
                login_url=self.sb.url, instance_url=self.sb.url, ca_file=self.sb.ca_file
            )
            self._client = Salesforce(session_id=self.sb.new_session(), instance_url=self.sb.url,
                                      session=session)
        return self._client

    def live_ids(self, obj: ObjectType) -> set[str]:
        return {r["Id"] for r in self.sb.records(SOBJECTS[obj]) if not r.get("IsDeleted")}

    def contact(self, contact_id: str) -> dict[str, Any]:
        r = self.sb.record("Contact", contact_id) or {}
        return {"email": r.get("Email"), "title": r.get("Title"), "account_id": r.get("AccountId")}

    def role_count(self) -> int:
        return len(self.live_ids(ObjectType.CONTACT_ROLE))

    def read_owned(self, obj: ObjectType, record_id: str) -> dict[str, Any]:
        sobject = SOBJECTS[obj]
        got = getattr(self.client, sobject).get(record_id)
        return {key: got.get(name) for key, name in DEFAULT_OWNED[sobject].items()}

    def read_task(self, task_id: str) -> dict[str, Any]:
        t = self.client.Task.get(task_id)
        return {"key": t.get("Crmsync_Key__c"), "subject": t.get("Subject"),
                "body": t.get("Description"), "closed": t.get("IsClosed")}  # fmt: skip

    def tasks_with_key(self, key: str) -> int:
        soql = format_soql("SELECT COUNT() FROM Task WHERE Crmsync_Key__c = {}", key)
        return int(self.client.query(soql)["totalSize"])

    def edit(self, obj: ObjectType, record_id: str, text: str) -> str:
        field, column = ("Title", "title") if obj is ObjectType.CONTACT else ("Name", "name")
        self.sb.update(SOBJECTS[obj], record_id, {field: text})
        return column

    def remove_role(self) -> str:
        role = sorted(self.live_ids(ObjectType.CONTACT_ROLE))[0]
        self.sb.delete("OpportunityContactRole", role)
        return role

    def delete(self, obj: ObjectType, record_id: str) -> None:
        self.sb.delete(SOBJECTS[obj], record_id)

    def purge(self, obj: ObjectType, record_id: str) -> None:
        self.sb.delete(SOBJECTS[obj], record_id)
        self.sb.purge(SOBJECTS[obj], record_id)  # emptied from the recycle bin

    def merge(self, obj: ObjectType, keep: str, lose: str) -> str:
        self.sb.merge(SOBJECTS[obj], keep, [lose])
        return keep

    def reject_writes_to(self, obj: ObjectType, record_id: str) -> None:
        self.sb.faults.add(kind="reject_write", match={"object": SOBJECTS[obj], "id": record_id},
                           code="FIELD_CUSTOM_VALIDATION_EXCEPTION",
                           message="Status is locked by a validation rule")  # fmt: skip

    def expire_auth_on_next_read(self) -> None:
        self.sb.faults.add(kind="expire_session", route="query*", nth=1)

    def expire_auth_on_next_write(self) -> None:
        self.sb.faults.add(kind="expire_session", route="composite*", nth=1)

    def auth_renewals(self) -> int:
        return self.sb.requests.count(route="login")

    def rate_limit_next(self, route: str) -> None:
        # Salesforce's transient limit: too many concurrent long requests (403
        # REQUEST_LIMIT_EXCEEDED "ConcurrentRequests"); it has no per-second limit.
        self.sb.faults.add(kind="concurrent_limit", route="query*" if route == "read" else "composite*",
                           limit=0, times=1)  # fmt: skip

    def spend_daily_limit_on_next_read(self) -> None:
        used, cap = self.sb.usage.snapshot()
        self.sb.faults.add(kind="quota", route="query*", nth=1, used=cap, max=cap)

    def requests(self) -> int:
        return int(self.sb.requests.counts()["total"])


class TestSalesforceContract(ConnectorContract):
    @pytest.fixture
    def org(self) -> Any:
        with SalesforceSandbox(DATA).start() as sb:
            yield SalesforceOrg(sb)
