"""HubSpot credentials: a private app token, or OAuth refresh token -> access token.

Private app tokens do not expire; a 401 means the token is wrong or revoked
(AuthFailed, no retry).

OAuth access tokens last about 30 minutes. `OAuthTokens` refreshes one
`margin_seconds` before `expires_in` runs out, and again when a call answers
401 (A1) — single-flight: concurrent callers that saw the same stale token
wait for one refresh and share its result. When HubSpot rotates the refresh
token, the new one is written to `refresh_token_file` atomically (temp file,
fsync, rename) before the new access token is used (A3), so the next run
authenticates with it. A 4xx from the token endpoint (`invalid_grant`,
`BAD_REFRESH_TOKEN`, bad client secret) is AuthFailed at once (A4): retrying a
revoked grant only burns calls. 5xx and connection failures are
CrmUnavailable and go through the normal retry policy.

The token request itself is sent by the connector's transport (client.py),
which counts it under "auth".
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from crmsync.connectors.base import Secret
from crmsync.connectors.errors import AuthFailed

log = logging.getLogger(__name__)

# form fields -> JSON body of the token endpoint's answer
TokenRequest = Callable[[Mapping[str, str]], Mapping[str, Any]]


class TokenSource(Protocol):
    oauth: bool

    def token(self) -> str:
        """A token to send now (refreshing first when it is about to expire)."""

    def on_unauthorized(self, used: str) -> str:
        """A call with `used` answered 401: a fresh token, or raise AuthFailed."""


class PrivateAppToken:
    """A private app's static token."""

    oauth = False

    def __init__(self, token: Secret) -> None:
        self._token = token

    def token(self) -> str:
        return self._token.reveal()

    def on_unauthorized(self, used: str) -> str:
        raise AuthFailed(
            "HubSpot rejected the private app token (401). Check [hubspot] token_env / "
            "token_file and that the app is still installed.",
            crm="hubspot",
            operation="auth",
            status=401,
            code="INVALID_AUTHENTICATION",
        )


class OAuthTokens:
    """OAuth 2 refresh-token flow with proactive and on-401 refresh, single-flight."""

    oauth = True

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: Secret,
        refresh_token: Secret,
        refresh_token_file: Path | None,
        request: TokenRequest,
        clock: Callable[[], float] = time.monotonic,
        margin_seconds: float = 120.0,
    ) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self.refresh_token_file = refresh_token_file
        self._request = request
        self.clock = clock
        self.margin_seconds = margin_seconds
        self._access: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.refreshes = 0

    def token(self) -> str:
        with self._lock:
            if self._access is None or self.clock() >= self._expires_at - self.margin_seconds:
                self._refresh("expiry")
            assert self._access is not None
            return self._access

    def on_unauthorized(self, used: str) -> str:
        with self._lock:
            if self._access == used or self._access is None:
                self._refresh("401")
            assert self._access is not None
            return self._access

    def _refresh(self, why: str) -> None:
        log.info("refreshing HubSpot access token", extra={"crm": "hubspot", "reason": why})
        body = self._request(
            {
                "grant_type": "refresh_token",
                "client_id": self.client_id,
                "client_secret": self._client_secret.reveal(),
                "refresh_token": self._refresh_token.reveal(),
            }
        )
        access = body.get("access_token")
        if not access:
            raise AuthFailed(
                "HubSpot's token endpoint answered without an access_token.",
                crm="hubspot",
                operation="auth",
            )
        new_refresh = body.get("refresh_token")
        if new_refresh and new_refresh != self._refresh_token.reveal():
            self._persist(str(new_refresh))  # before the new access token is used (A3)
            self._refresh_token = Secret(str(new_refresh), self._refresh_token.source)
        expires_in = float(body.get("expires_in") or 1800)
        self._access = str(access)
        self._expires_at = self.clock() + expires_in
        self.refreshes += 1

    def _persist(self, value: str) -> None:
        path = self.refresh_token_file
        if path is None:
            log.warning(
                "HubSpot rotated the refresh token but no refresh_token_file is configured; "
                "the new token lives only in memory. Set [hubspot] refresh_token_file.",
                extra={"crm": "hubspot"},
            )
            return
        try:
            write_atomic(path, value + "\n")
        except OSError as e:
            log.error(
                "could not save the rotated HubSpot refresh token to %s (%s); the next run "
                "may fail to authenticate. Fix the file's permissions.",
                path,
                e.strerror,
                extra={"crm": "hubspot"},
            )
            return
        log.info("saved rotated HubSpot refresh token", extra={"crm": "hubspot", "file": str(path)})


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` so a reader sees the old or the new file, never half."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
