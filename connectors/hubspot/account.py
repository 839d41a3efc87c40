"""The HubSpot account's own details: its portal id and UI domain, for links to records.

The leader report opens a company in HubSpot with
`https://<uiDomain>/contacts/<portalId>/record/0-2/<companyId>`, so the pull
stores the portal id (and the UI domain: app.hubspot.com, or app-eu1.hubspot.com
for an account hosted in the EU) in the mirror (state/crm_info.py).

They come from `GET /account-info/v3/details`, which answers `portalId`,
`uiDomain`, `timeZone`, `companyCurrency`, ... (HubSpot, "Account information
API", https://developers.hubspot.com/docs/api-reference/latest/account/account-information/get-account-details;
scope `oauth`, which every app has). hubspot-api-client 12 has no generated API
for it, so `DetailsApi` sends it through a generated ApiClient: the same host,
TLS settings, `Retry(0)`, token and `HubSpotApi.call` (limiter, counting,
retries, error translation) as every other call.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from crmsync.connectors.errors import AuthFailed, CrmRefused

from .client import HubSpotApi

log = logging.getLogger(__name__)

API_PATH = "account.details_api"
DETAILS_PATH = "/account-info/v3/details"


class DetailsApi:
    """`GET /account-info/v3/details` in the shape of a generated API object."""

    def __init__(self, api_client: Any) -> None:
        self.api_client = api_client  # HubSpotApi puts the current token on its configuration

    def get_details(self, **kwargs: Any) -> Any:
        return self.api_client.call_api(
            DETAILS_PATH,
            "GET",
            {},
            [],
            {"Accept": "application/json"},
            response_types_map={},
            auth_settings=["oauth2"],
            _preload_content=kwargs.get("_preload_content", True),
            _request_timeout=kwargs.get("_request_timeout"),
        )


def details(api: HubSpotApi, known: Mapping[str, str]) -> dict[str, str]:
    """{"portal_id": ..., "ui_domain": ...}: one call, only while `known` lacks the portal id.

    An app that may not read them gets {} (the report then shows no HubSpot links);
    an unreachable HubSpot raises as any call does."""
    if known.get("portal_id"):
        return {}
    api.add_api(API_PATH, DetailsApi(api.api("crm.owners.owners_api").api_client))
    try:
        body = api.call("account_info", API_PATH, "get_details").body
    except (AuthFailed, CrmRefused) as e:
        log.warning(
            "HubSpot account details not readable: reports show no links into HubSpot",
            extra={"crm": "hubspot", "status": e.status, "code": e.code},
        )
        return {}
    if not isinstance(body, Mapping) or body.get("portalId") in (None, ""):
        return {}
    out = {"portal_id": str(body["portalId"])}
    domain = body.get("uiDomain")
    if isinstance(domain, str) and domain.strip():
        out["ui_domain"] = domain.strip()
    return out
