"""Bearer-token auth and the OAuth token endpoint of the HubSpot emulator.

Fixed, documented dummy credentials (team brief): private app token
"pat-sandbox-0000"; OAuth client id "sandbox-client-id", secret
"sandbox-client-secret", refresh token "sandbox-refresh-token". Access tokens
from POST /oauth/v1/token live `expires_in` seconds of the emulator clock (and
can be expired by the expire_token fault). Refresh tokens stay valid across
refreshes unless the rotate_refresh_token fault is on (then each refresh
issues a new one and retires the old) or the revoke fault fires.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from .objects import HsError

PRIVATE_APP_TOKEN = "pat-sandbox-0000"
CLIENT_ID = "sandbox-client-id"
CLIENT_SECRET = "sandbox-client-secret"
REFRESH_TOKEN = "sandbox-refresh-token"
TOKEN_TTL_S = 1800

_MISSING = ("Authentication credentials not found. This API supports OAuth 2.0 authentication and "
            "you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview")


@dataclass
class AccessToken:
    token: str
    expires_at: float
    expired_at: float | None = None


@dataclass
class Auth:
    """Valid tokens and refresh tokens of one emulated account."""

    private_tokens: set[str] = field(default_factory=lambda: {PRIVATE_APP_TOKEN})
    refresh_tokens: set[str] = field(default_factory=lambda: {REFRESH_TOKEN})
    access: dict[str, AccessToken] = field(default_factory=dict)
    refreshes: int = 0

    def check(self, header: str | None, now: float) -> tuple[str, bool]:
        """(token, is_oauth) for a valid Authorization header, else a 401 HsError."""
        if not header or not header.lower().startswith("bearer "):
            raise HsError(401, "INVALID_AUTHENTICATION", _MISSING)
        token = header[7:].strip()
        if token in self.private_tokens:
            return token, False
        at = self.access.get(token)
        if at is None:
            raise HsError(401, "INVALID_AUTHENTICATION", _MISSING)
        dead_at = at.expired_at if at.expired_at is not None else (
            at.expires_at if now >= at.expires_at else None)
        if dead_at is not None:
            raise expired(max(0, int(now - dead_at)))
        return token, True

    def expire(self, token: str, now: float) -> None:
        at = self.access.get(token)
        if at is not None and at.expired_at is None:
            at.expired_at = now

    def issue(self, form: dict[str, Any], now: float, rotate: bool, revoked: bool) -> dict[str, Any]:
        """Answer POST /oauth/v1/token (grant_type=refresh_token) or raise its 400."""
        grant = form.get("grant_type")
        if grant != "refresh_token":
            raise _oauth_error("BAD_GRANT_TYPE", "unsupported grant type", "unsupported_grant_type")
        if form.get("client_id") != CLIENT_ID:
            raise _oauth_error("BAD_CLIENT_ID", "missing or unknown client id", "invalid_client")
        if form.get("client_secret") != CLIENT_SECRET:
            raise _oauth_error("BAD_CLIENT_SECRET", "missing or invalid client secret", "invalid_client")
        rt = form.get("refresh_token")
        if revoked and rt in self.refresh_tokens:
            self.refresh_tokens.discard(rt)
        if rt not in self.refresh_tokens:
            raise _oauth_error("BAD_REFRESH_TOKEN", "missing or invalid refresh token", "invalid_grant")
        if rotate:
            self.refresh_tokens.discard(rt)
            rt = "sandbox-refresh-" + secrets.token_hex(8)
            self.refresh_tokens.add(rt)
        token = "sandbox-access-" + secrets.token_hex(12)
        self.access[token] = AccessToken(token, now + TOKEN_TTL_S)
        self.refreshes += 1
        return {"token_type": "bearer", "refresh_token": rt, "access_token": token,
                "expires_in": TOKEN_TTL_S}

    def info(self, token: str, now: float) -> dict[str, Any]:
        at = self.access.get(token)
        if at is None or at.expired_at is not None or now >= at.expires_at:
            raise HsError(404, "", "Token not found", status_override="BAD_ACCESS_TOKEN")
        return {"token": token, "user": "crmsync@sandbox.test", "hub_domain": "sandbox.hubspot.test",
                "scopes": ["crm.objects.contacts.read", "crm.objects.contacts.write",
                           "crm.objects.companies.read", "crm.objects.companies.write",
                           "crm.objects.deals.read", "crm.schemas.contacts.write", "oauth"],
                "hub_id": 1, "app_id": 1, "expires_in": int(at.expires_at - now), "user_id": 1,
                "token_type": "access"}


def expired(seconds_ago: int) -> HsError:
    return HsError(401, "EXPIRED_AUTHENTICATION",
                   f"The OAuth token used to make this call expired {seconds_ago} second(s) ago.")


def _oauth_error(status: str, message: str, error: str) -> HsError:
    """The token endpoint's 400 shape: HubSpot's status code word plus the OAuth error."""
    return HsError(400, "", message, status_override=status, error=error, error_description=message)
