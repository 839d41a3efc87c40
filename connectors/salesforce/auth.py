"""auth = "refresh_token": the OAuth refresh-token grant, which simple-salesforce does not speak.

Most connected-app integrations (Singer's tap-salesforce, Meltano, Airbyte)
hold an OAuth refresh token. simple-salesforce 1.12 has no refresh-token mode
(api-facts §14), so crmsync calls the token endpoint itself, through the
connector's own requests.Session (the same login_url routing and ca_file as
every other call: transport.py), and builds the client in direct mode from the
answer's `access_token` and `instance_url`. Direct mode never logs in again by
itself: on INVALID_SESSION_ID, client.py asks for a new access token once and
retries the call.

The request (REST API guide, "How Does the OAuth Refresh Token Fit..."):
`POST <login_url>/services/oauth2/token` with the form `grant_type=refresh_token`,
`refresh_token`, `client_id` (`consumer_key`), `client_secret`
(`consumer_secret`; required unless the connected app waives it, so always
sent), `format=json`. The answer: 200 `{access_token, instance_url, id,
token_type, issued_at, signature, scope}`, where `id` is the identity URL
ending in the user's Id (setup assigns permission sets to that user), and a
new `refresh_token` only when the connected app rotates them.

Failures (RELIABILITY A4):
- 400 `invalid_grant` ("expired access/refresh token": revoked, expired, or
  rotated away; restforce#81): AuthFailed at once, naming `[salesforce]
  refresh_token_env / refresh_token_file`; retrying a revoked grant only burns
  calls;
- 400/401 `invalid_client`: AuthFailed naming consumer_key / consumer_secret;
- 5xx, a body that is not JSON, connection failures: CrmUnavailable (retried
  by the caller's policy).

Rotation: when the answer brings a new refresh token (the previous one then
stops working), crmsync uses it for the rest of the run and, when the token
came from `refresh_token_file`, writes it back there atomically before using
the new access token, as the HubSpot connector does (connectors/hubspot/auth.py).
A token from an environment variable cannot be saved: a warning says so.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from crmsync.connectors.base import Secret
from crmsync.connectors.errors import AuthFailed, CrmUnavailable

log = logging.getLogger(__name__)

TOKEN_PATH = "/services/oauth2/token"
SETTING = "[salesforce] refresh_token_env / refresh_token_file"


@dataclass(frozen=True)
class AccessGrant:
    """What the token endpoint answered: a session for direct mode, and whose it is."""

    access_token: str
    instance_url: str
    user_id: str | None


class RefreshTokenAuth:
    """The refresh-token grant for one connector: each `grant()` is one token request."""

    def __init__(
        self,
        *,
        login_url: str,
        client_id: str,
        client_secret: Secret,
        refresh_token: Secret,
        session: requests.Session,
    ) -> None:
        self.url = login_url.rstrip("/") + TOKEN_PATH
        self.client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self.session = session
        self.grants = 0

    def grant(self) -> AccessGrant:
        """A new access token, or AuthFailed / CrmUnavailable (see the module docstring)."""
        response = self.session.post(
            self.url,
            data={
                "grant_type": "refresh_token",
                "refresh_token": self._refresh_token.reveal(),
                "client_id": self.client_id,
                "client_secret": self._client_secret.reveal(),
                "format": "json",
            },
            headers={"Accept": "application/json"},
        )
        body = _json(response)
        if response.status_code >= 500 or response.status_code == 429:
            raise CrmUnavailable(
                f"Salesforce token endpoint unavailable (HTTP {response.status_code})",
                crm="salesforce",
                operation="auth",
                status=response.status_code,
            )
        if response.status_code != 200 or not body.get("access_token"):
            raise _refused(response.status_code, body)
        new = body.get("refresh_token")
        if new and new != self._refresh_token.reveal():
            self._rotate(str(new))
        self.grants += 1
        identity = str(body.get("id") or "")
        user = identity.rstrip("/").rsplit("/", 1)[-1] if "/id/" in identity else None
        return AccessGrant(str(body["access_token"]), str(body.get("instance_url") or ""), user)

    def _rotate(self, value: str) -> None:
        source = self._refresh_token.source
        self._refresh_token = Secret(value, source)
        if not source.startswith("file "):
            log.warning(
                "Salesforce rotated the refresh token, but it came from %s and cannot be saved; "
                "the next run will be refused (invalid_grant). Use refresh_token_file, or turn "
                "refresh-token rotation off in the connected app.",
                source or "the settings",
                extra={"crm": "salesforce"},
            )
            return
        path = Path(source[len("file ") :])
        try:
            _write_atomic(path, value + "\n")
        except OSError as e:
            log.error(
                "could not save the rotated Salesforce refresh token to %s (%s); the next run "
                "may be refused. Fix the file's permissions.",
                path,
                e.strerror,
                extra={"crm": "salesforce"},
            )
            return
        log.info("saved rotated Salesforce refresh token", extra={"crm": "salesforce", "file": str(path)})


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        if response.status_code == 200:
            raise CrmUnavailable(
                "Salesforce token endpoint sent a body that is not JSON",
                crm="salesforce",
                operation="auth",
                code="BAD_BODY",
            ) from None
        return {}
    return body if isinstance(body, dict) else {}


def _refused(status: int, body: dict[str, Any]) -> AuthFailed:
    code = str(body.get("error") or f"HTTP {status}")
    detail = str(body.get("error_description") or "")
    if code == "invalid_grant":
        return AuthFailed(
            f"Salesforce refused the refresh token (invalid_grant: {detail or 'revoked or expired'}); "
            f"it comes from {SETTING}",
            crm="salesforce",
            operation="auth",
            status=status,
            code=code,
            detail=detail,
            fix="Authorize the connected app again and put the new refresh token where "
            "[salesforce] refresh_token_env or refresh_token_file points.",
        )
    if code == "invalid_client":
        return AuthFailed(
            "Salesforce refused the connected app's credentials (invalid_client); they come from "
            "[salesforce] consumer_key and consumer_secret_env / consumer_secret_file",
            crm="salesforce",
            operation="auth",
            status=status,
            code=code,
            detail=detail,
            fix="Copy the consumer key and secret from the connected app again.",
        )
    return AuthFailed(
        f"Salesforce token endpoint refused the refresh token ({code}); check {SETTING}, "
        "consumer_key and consumer_secret",
        crm="salesforce",
        operation="auth",
        status=status,
        code=code,
        detail=detail,
    )


def _write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` so a reader sees the old or the new file, never half."""
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
