"""HubSpot's account details: the portal id the report's links need (issue 15).

`GET /account-info/v3/details` through hubspot-api-client's ApiClient, against
the sandbox: asked only while the mirror does not know the portal id, counted
like every call, and an app that may not read it gets no links, not a failed run.
"""

from __future__ import annotations

import logging

from crmsync.connectors.base import Secret
from crmsync.connectors.hubspot import HubSpotConnector, Settings
from crmsync.sandbox.generate import generate
from crmsync.sandbox.hubspot import PRIVATE_APP_TOKEN, HubSpotSandbox
from crmsync.sandbox.hubspot.app import PORTAL_ID


def _connector(hs: HubSpotSandbox) -> HubSpotConnector:
    return HubSpotConnector(Settings(host=hs.url, token=Secret(PRIVATE_APP_TOKEN)))


def test_the_portal_id_and_ui_domain_come_from_the_account_details() -> None:
    with HubSpotSandbox(dataset=generate(seed=1, accounts=2, crms=("hubspot",))) as hs:
        c = _connector(hs)
        assert c.crm_info({}) == {"portal_id": str(PORTAL_ID), "ui_domain": "app.hubspot.com"}
        assert hs.requests.count("account_details") == 1
        assert c.calls.by_operation["account_info"] == 1
        # known already: no call
        assert c.crm_info({"portal_id": str(PORTAL_ID)}) == {}
        assert hs.requests.count("account_details") == 1


def test_an_app_that_may_not_read_the_account_details_gets_no_links_and_goes_on(caplog) -> None:
    faults = [{"kind": "status", "route": "account_details", "status": 403,
               "category": "MISSING_SCOPES", "message": "missing scope"}]  # fmt: skip
    with HubSpotSandbox(dataset=generate(seed=1, accounts=2, crms=("hubspot",)), faults=faults) as hs:
        c = _connector(hs)
        with caplog.at_level(logging.WARNING):
            assert c.crm_info({}) == {}
        assert hs.requests.count("account_details") == 1  # refused once, not retried
    warning = next(r for r in caplog.records if "account details" in r.getMessage())
    assert warning.status == 403 and warning.code == "MISSING_SCOPES"  # type: ignore[attr-defined]
    assert PRIVATE_APP_TOKEN not in caplog.text
