"""Fixtures for the sandbox emulator tests (hs_* HubSpot, sf_* Salesforce)."""

from __future__ import annotations

import pytest as _hs_pytest

# ------------------------------------------------------------------ HubSpot emulator (hs_*)
# Fixtures for tests/sandbox/test_hubspot_*.py: one emulator per session on a
# fake clock, reset (data, faults, limits) before each test, and a real
# hubspot-api-client with Retry(0) so every 429/5xx reaches the test.

HS_TOKEN = "pat-sandbox-0000"
HS_EPOCH_S = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class HsClock:
    """Injectable emulator clock (epoch seconds); tests move it with advance()."""

    def __init__(self, t: float = HS_EPOCH_S) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def hs_small_dataset() -> dict:
    """Owners, 3 companies, 250 contacts (120 at company 1003), 2 deals with labels, 1 task."""
    from crmsync.sandbox.hubspot.store import iso

    base = int((HS_EPOCH_S - 31 * 86400) * 1000)  # 2025-12-01
    contacts = []
    for n in range(250):
        i = 2001 + n
        company = "1003" if n < 120 else ("1001" if n % 2 == 0 else "1002")
        contacts.append({"id": str(i), "properties": {
            "email": f"c{i}@{'initech' if company == '1003' else 'acme'}.com",
            "firstname": f"First{i}", "lastname": f"Last{i}",
            "jobtitle": "Former VP Sales" if n % 50 == 7 else ("CFO" if n % 10 == 0 else "Engineer"),
            "hubspot_owner_id": "101" if n % 3 else "102",
            "createdate": iso(base - 86400_000 * 100 + n),
            "lastmodifieddate": iso(base + n * 60_000),
            "hs_email_hard_bounce_reason_enum": "UNKNOWN_USER" if n % 25 == 3 else None,
            "hs_buying_role": "CHAMPION;DECISION_MAKER" if n == 120 else None,
        }, "associations": {"companies": [{"id": company, "label": "primary"}]}})
    return {"hubspot": {
        "owners": [
            {"id": "101", "email": "ana@sandbox.test", "firstName": "Ana", "lastName": "Li", "userId": 9001},
            {"id": "102", "email": "bo@sandbox.test", "firstName": "Bo", "lastName": "Ng", "userId": 9002},
            {"id": "103", "email": "gone@sandbox.test", "firstName": "Old", "lastName": "Owner",
             "userId": 9003, "archived": True},
        ],
        "companies": [
            {"id": "1001", "properties": {"name": "Acme", "domain": "acme.com", "hubspot_owner_id": "101",
                                          "hs_ideal_customer_profile": "tier_1", "crm_region": "EMEA",
                                          "renewal_date": "2026-03-01",
                                          "createdate": iso(base - 86400_000 * 400),
                                          "hs_lastmodifieddate": iso(base - 86400_000)}},
            {"id": "1002", "properties": {"name": "Globex", "domain": "globex.com",
                                          "hs_ideal_customer_profile": "tier_2",
                                          "createdate": iso(base - 86400_000 * 300),
                                          "hs_lastmodifieddate": iso(base - 86400_000 * 2)}},
            {"id": "1003", "properties": {"name": "Initech", "domain": "initech.com",
                                          "hs_ideal_customer_profile": "tier_3",
                                          "createdate": iso(base - 86400_000 * 200),
                                          "hs_lastmodifieddate": iso(base - 86400_000 * 3)}},
        ],
        "contacts": contacts,
        "deals": [
            {"id": "3001", "properties": {"dealname": "Acme renewal", "dealstage": "contractsent",
                                          "pipeline": "default", "amount": "50000",
                                          "closedate": "2026-03-01T00:00:00.000Z"},
             "associations": {"companies": [{"id": "1001", "label": "primary"}],
                              "contacts": [{"id": "2121", "label": "Champion"},
                                           {"id": "2123", "label": None}]}},
            {"id": "3002", "properties": {"dealname": "Globex new", "dealstage": "closedwon"},
             "associations": {"companies": [{"id": "1002", "label": None}]}},
        ],
        "tasks": [
            {"id": "4001", "properties": {"hs_timestamp": "2026-01-10T09:00:00.000Z",
                                          "hs_task_subject": "Call Acme", "hs_task_status": "NOT_STARTED"},
             "associations": {"contacts": [{"id": "2121", "label": None}],
                              "companies": [{"id": "1001", "label": None}]}},
        ],
    }}


@_hs_pytest.fixture(scope="session")
def hs_clock() -> HsClock:
    return HsClock()


@_hs_pytest.fixture(scope="session")
def hs_server(hs_clock):
    from crmsync.sandbox.hubspot import HubSpotSandbox

    hs = HubSpotSandbox(dataset=hs_small_dataset(), clock=hs_clock, sleep=lambda s: None).start()
    yield hs
    hs.stop()


@_hs_pytest.fixture
def hs(hs_server, hs_clock):
    """The session emulator, with its dataset, faults, limits and counts reset."""
    hs_clock.t = HS_EPOCH_S
    hs_server.set_rate_limits(False)
    hs_server.reset(data=True, faults=True)
    yield hs_server
    hs_server.set_faults(None)


@_hs_pytest.fixture
def hs_client(hs):
    """hubspot-api-client 12 on the emulator; Retry(0) so 429s and 5xx are not hidden."""
    from hubspot import HubSpot
    from urllib3.util.retry import Retry

    return HubSpot(access_token=HS_TOKEN, host=hs.url, retry=Retry(0))


# ------------------------------------------------------------------ Salesforce emulator (sf_*)
# Fixtures for tests/sandbox/test_salesforce_emulator.py: one TLS emulator per
# session on a fake clock, reset (data, faults, usage, counts) before each test,
# and simple-salesforce clients on a transport.build_session session.

import pytest as _sf_pytest  # noqa: E402

SF_EPOCH = "2026-11-01T12:00:00+00:00"


class SfClock:
    """Injectable emulator clock (aware datetimes); tests move it with advance()."""

    def __init__(self) -> None:
        from datetime import datetime

        self.start = datetime.fromisoformat(SF_EPOCH)
        self.now = self.start

    def __call__(self):
        return self.now

    def advance(self, seconds: float) -> None:
        from datetime import timedelta

        self.now += timedelta(seconds=seconds)


def sf_small_dataset() -> dict:
    """2 users, 3 accounts, 450 contacts (modstamps over the last 10 days), 2 opps, 3 roles, 1 task."""
    from datetime import datetime, timedelta

    from crmsync.sandbox.common import sf_id

    base = datetime.fromisoformat(SF_EPOCH) - timedelta(days=10)

    def stamp(minutes: int) -> str:
        return (base + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")

    u1, u2 = sf_id("005", 1), sf_id("005", 2)
    accounts = [
        {"Id": sf_id("001", i), "Name": name, "Website": f"{name.lower()}.com", "OwnerId": u1 if i != 3 else u2,
         "Tier__c": tier, "Renewal_Date__c": "2027-01-15", "SystemModstamp": stamp(i)}
        for i, (name, tier) in enumerate([("Acme", "Strategic"), ("Globex", "Growth"), ("Initech", None)], 1)
    ]
    contacts = [
        {"Id": sf_id("003", i), "AccountId": sf_id("001", 1 + i % 3), "FirstName": f"First{i}",
         "LastName": f"Last{i:03d}", "Email": f"c{i}@example.com" if i % 50 else None,
         "Title": "CFO" if i % 10 == 0 else "Engineer", "OwnerId": u1,
         "IsEmailBounced": i % 25 == 3, "LastActivityDate": "2026-10-01" if i % 2 else None,
         "CreatedDate": stamp(0), "SystemModstamp": stamp(10 + i)}
        for i in range(1, 451)
    ]
    opps = [
        {"Id": sf_id("006", 1), "AccountId": sf_id("001", 1), "Name": "Acme renewal", "StageName": "Negotiation/Review",
         "CloseDate": "2027-01-15", "Amount": 50000.0, "OwnerId": u1, "SystemModstamp": stamp(500)},
        {"Id": sf_id("006", 2), "AccountId": sf_id("001", 2), "Name": "Globex new", "StageName": "Closed Won",
         "IsClosed": True, "IsWon": True, "CloseDate": "2026-06-01", "Amount": 1000.0, "OwnerId": u1,
         "SystemModstamp": stamp(501)},
    ]
    roles = [
        {"Id": sf_id("00K", i), "OpportunityId": sf_id("006", 1), "ContactId": sf_id("003", c), "Role": role,
         "IsPrimary": i == 1, "SystemModstamp": stamp(600 + i)}
        for i, (c, role) in enumerate([(3, "Champion"), (6, "Economic Buyer"), (9, None)], 1)
    ]
    return {"salesforce": {
        "User": [
            {"Id": u1, "FirstName": "Ana", "LastName": "Li", "Email": "ana@sandbox.test", "Username": "ana@sandbox.test", "IsActive": True},
            {"Id": u2, "FirstName": "Bo", "LastName": "Ng", "Email": "bo@sandbox.test", "Username": "bo@sandbox.test", "IsActive": False},
        ],
        "Account": accounts,
        "Contact": contacts,
        "Opportunity": opps,
        "OpportunityContactRole": roles,
        "Task": [{"Id": sf_id("00T", 1), "WhoId": sf_id("003", 3), "WhatId": sf_id("001", 1), "Subject": "Call",
                  "ActivityDate": "2026-10-20", "Status": "Completed", "OwnerId": u1, "SystemModstamp": stamp(700)}],
    }}


@_sf_pytest.fixture(scope="session")
def sf_clock() -> SfClock:
    return SfClock()


@_sf_pytest.fixture(scope="session")
def sf_server(sf_clock):
    from crmsync.sandbox.salesforce import SalesforceSandbox

    sb = SalesforceSandbox(sf_small_dataset(), clock=sf_clock, sleep_ms=lambda ms: None).start()
    yield sb
    sb.stop()


from crmsync.sandbox.salesforce.store import BIN_CAPACITY  # noqa: E402


@_sf_pytest.fixture
def sf(sf_server, sf_clock):
    """The session Salesforce emulator with data, faults, API usage and counts reset."""
    sf_clock.now = sf_clock.start
    sf_server.bulk_job_seconds = sf_server.bulk_job_seconds_per_10k_rows = 0.0
    sf_server.recycle_bin_capacity = BIN_CAPACITY
    sf_server.activity_external_id = "allowed"
    sf_server.auth.rotate_refresh_tokens = False
    sf_server.set_api_usage(used=0, max=100_000)
    sf_server.reset(sf_small_dataset())
    yield sf_server
    sf_server.faults.clear()


@_sf_pytest.fixture
def sf_session(sf):
    """A requests.Session routing login hosts to the emulator and trusting its CA."""
    from crmsync.connectors.salesforce.transport import build_session

    return build_session(login_url=sf.url, instance_url=sf.url, ca_file=sf.ca_file)


@_sf_pytest.fixture
def sf_client(sf, sf_session):
    """simple-salesforce logged in with the SOAP username/password/token flow."""
    from simple_salesforce import Salesforce

    from crmsync.sandbox.salesforce import PASSWORD, SECURITY_TOKEN, USERNAME

    return Salesforce(username=USERNAME, password=PASSWORD, security_token=SECURITY_TOKEN, session=sf_session)


def _grant(sf_client, *fields: str, edit: bool = True, user: str | None = None) -> str:
    """Grant fields ("Account.X__c", "Task.X__c") to a user (default: the integration user)
    through a new permission set over the API, as `crmsync setup` does; returns its Id."""
    from crmsync.sandbox.salesforce import INTEGRATION_USER_ID

    _grant.n += 1  # type: ignore[attr-defined]
    name = f"test_grant_{_grant.n}"  # type: ignore[attr-defined]
    ps = sf_client.PermissionSet.create({"Name": name, "Label": name})["id"]
    for spelled in fields:
        sf_client.FieldPermissions.create({
            "ParentId": ps, "SobjectType": spelled.split(".")[0], "Field": spelled,
            "PermissionsRead": True, "PermissionsEdit": edit,
        })
    sf_client.PermissionSetAssignment.create({"AssigneeId": user or INTEGRATION_USER_ID, "PermissionSetId": ps})
    return ps


_grant.n = 0  # type: ignore[attr-defined]


@_sf_pytest.fixture
def sf_grant():
    """grant(sf_client, "Contact.X__c", ..., edit=True, user=None): field-level security."""
    return _grant
