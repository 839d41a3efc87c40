"""Logins the emulator accepts and the session ids it issues.

SOAP `login` (simple-salesforce's username/password/token mode) and the
OAuth token endpoint (password, client_credentials with a Basic header, JWT
bearer verified against the sandbox's own RSA key, whose private half is
written to a file so crmsync can use auth = "jwt", and refresh_token).
Credentials are the fixed, documented sandbox dummies (brief: "Sandbox fixed
dummy credentials").

The refresh_token grant answers as Salesforce does (REST API guide, "How Does
the OAuth Refresh Token Fit..."; api-facts §14): form `grant_type=refresh_token
&refresh_token&client_id&client_secret` (the secret is required: the harsher
reading of "Required unless the Require Secret for Web Server Flow setting is
not enabled"); 200 with `access_token, instance_url, id, token_type,
issued_at, signature, scope` and no `refresh_token` unless rotation is on
(`rotate_refresh_tokens`: then a new one comes with each answer and the old
one stops working, as Salesforce's "Refresh Token Rotation" does); a revoked
or unknown token answers 400 `{"error": "invalid_grant", "error_description":
"expired access/refresh token"}` (restforce#81, SalesforceMobileSDK-iOS#1250),
a wrong client 400 `invalid_client` ("invalid client credentials").
`revoke_refresh_tokens()` revokes every refresh token (as a user or admin
revoking the connected app's access does).

Sessions are opaque tokens, each for one user (the integration user unless a
test asks for another: `issue(user_id)`); `expire_all()` (fault kind
expire_session) invalidates every current one, while a freshly issued token
works at once (simple-salesforce retries right after re-login).
`GET /services/oauth2/userinfo` answers who a session belongs to (OpenID
Connect UserInfo, Salesforce help "Query for User Information").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .store import INTEGRATION_USER_ID, INTEGRATION_USERNAME, ORG_ID

USERNAME = INTEGRATION_USERNAME
PASSWORD = "sandbox-password"
SECURITY_TOKEN = "sandbox-token"
CONSUMER_KEY = "sandbox-consumer-key"
CONSUMER_SECRET = "sandbox-consumer-secret"
REFRESH_TOKEN = "5Aep861sandbox-refresh-token"

_FAULT_NS = (
    'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:sf="urn:fault.partner.soap.sforce.com" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
)


class Auth:
    """Issues and checks session ids; answers the two login endpoints."""

    def __init__(self, key_file: Path) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, str] = {}  # session id -> user id
        self._refresh_tokens: set[str] = {REFRESH_TOKEN}
        self.rotate_refresh_tokens = False
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.public_key = key.public_key()
        self.key_file = key_file
        key_file.write_bytes(self.private_pem)
        self._signing = secrets.token_bytes(32)

    # -- sessions
    def issue(self, user_id: str = INTEGRATION_USER_ID) -> str:
        token = f"{ORG_ID[:15]}!AQ{secrets.token_urlsafe(48)}"
        with self._lock:
            self._sessions[token] = user_id
        return token

    def valid(self, token: str | None) -> bool:
        return self.user_of(token) is not None

    def user_of(self, token: str | None) -> str | None:
        """The user a session belongs to, or None for an unknown or expired session."""
        with self._lock:
            return None if token is None else self._sessions.get(token)

    def expire_all(self) -> None:
        with self._lock:
            self._sessions.clear()

    def revoke_refresh_tokens(self) -> None:
        with self._lock:
            self._refresh_tokens.clear()

    def restore_refresh_token(self) -> None:
        """Back to the one documented dummy refresh token (a sandbox reset)."""
        with self._lock:
            self._refresh_tokens = {REFRESH_TOKEN}

    # -- SOAP
    def soap_login(self, body: bytes, base_url: str, version: str) -> tuple[int, str]:
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError:
            return 500, _soap_fault("INVALID_LOGIN", "Invalid username, password, security token; or user locked out.")
        username = _find_text(root, "username")
        password = _find_text(root, "password")
        if (username or "").lower() != USERNAME or password not in (PASSWORD + SECURITY_TOKEN,):
            return 500, _soap_fault(
                "INVALID_LOGIN", "Invalid username, password, security token; or user locked out."
            )
        sid = self.issue()
        org = ORG_ID
        return 200, (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<soapenv:Body><loginResponse><result>"
            f"<metadataServerUrl>{base_url}/services/Soap/m/{version}/{org[:15]}</metadataServerUrl>"
            "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
            f"<serverUrl>{base_url}/services/Soap/u/{version}/{org[:15]}</serverUrl>"
            f"<sessionId>{escape(sid)}</sessionId>"
            f"<userId>{INTEGRATION_USER_ID}</userId>"
            f"<userInfo><organizationId>{org}</organizationId><organizationName>crmsync sandbox</organizationName>"
            f"<userEmail>{USERNAME}</userEmail><userFullName>crmsync integration</userFullName>"
            f"<userId>{INTEGRATION_USER_ID}</userId><userName>{USERNAME}</userName>"
            "<userTimeZone>GMT</userTimeZone></userInfo>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )

    # -- OAuth
    def oauth_token(
        self, form: dict[str, str], authorization: str | None, base_url: str
    ) -> tuple[int, dict[str, Any]]:
        grant = form.get("grant_type", "")
        if grant == "password":
            if (form.get("client_id"), form.get("client_secret")) != (CONSUMER_KEY, CONSUMER_SECRET):
                return 400, _oauth_error("invalid_client", "invalid client credentials")
            if (form.get("username") or "").lower() != USERNAME or form.get("password") not in (
                PASSWORD,
                PASSWORD + SECURITY_TOKEN,
            ):
                return 400, _oauth_error("invalid_grant", "authentication failure")
        elif grant == "client_credentials":
            key, secret = _basic(authorization) or (form.get("client_id"), form.get("client_secret"))
            if (key, secret) != (CONSUMER_KEY, CONSUMER_SECRET):
                return 400, _oauth_error("invalid_client", "invalid client credentials")
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            error = self._check_jwt(form.get("assertion", ""))
            if error:
                return 400, _oauth_error("invalid_grant", error)
        elif grant == "refresh_token":
            if (form.get("client_id"), form.get("client_secret")) != (CONSUMER_KEY, CONSUMER_SECRET):
                return 400, _oauth_error("invalid_client", "invalid client credentials")
            with self._lock:
                known = form.get("refresh_token", "") in self._refresh_tokens
            if not known:
                return 400, _oauth_error("invalid_grant", "expired access/refresh token")
            body = self._token_body(base_url)
            if self.rotate_refresh_tokens:
                new = f"5Aep861{secrets.token_urlsafe(32)}"
                with self._lock:
                    self._refresh_tokens = {new}
                body["refresh_token"] = new
            return 200, body
        else:
            return 400, _oauth_error("unsupported_grant_type", "grant type not supported")
        return 200, self._token_body(base_url)

    def _check_jwt(self, assertion: str) -> str | None:
        try:
            claims = jwt.decode(
                assertion,
                self.public_key,
                algorithms=["RS256"],
                options={"verify_aud": False, "require": ["exp"]},
            )
        except jwt.ExpiredSignatureError:
            return "expired authorization code"
        except jwt.PyJWTError:
            return "invalid assertion"
        if not claims.get("sub"):
            return "invalid assertion"
        return None

    def _token_body(self, base_url: str) -> dict[str, Any]:
        token = self.issue()
        issued = str(int(time.time() * 1000))
        ident = f"{base_url}/id/{ORG_ID}/{INTEGRATION_USER_ID}"
        sig = base64.b64encode(
            hmac.new(self._signing, (ident + issued).encode(), hashlib.sha256).digest()
        ).decode()
        return {
            "access_token": token,
            "instance_url": base_url,
            "id": ident,
            "token_type": "Bearer",
            "issued_at": issued,
            "signature": sig,
            "scope": "api",
        }


def _find_text(root: ElementTree.Element, local: str) -> str | None:
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] == local:
            return el.text or ""
    return None


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        key, _, secret = base64.b64decode(header[6:].strip()).decode().partition(":")
    except ValueError:
        return None
    return key, secret


def _oauth_error(code: str, description: str) -> dict[str, Any]:
    return {"error": code, "error_description": description}


def soap_fault_xml(code: str, message: str) -> str:
    return _soap_fault(code, message)


def _soap_fault(code: str, message: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<soapenv:Envelope {_FAULT_NS}><soapenv:Body><soapenv:Fault>"
        f"<faultcode>sf:{escape(code)}</faultcode>"
        f"<faultstring>{escape(code)}: {escape(message)}</faultstring>"
        f'<detail><sf:LoginFault xsi:type="sf:LoginFault">'
        f"<sf:exceptionCode>{escape(code)}</sf:exceptionCode>"
        f"<sf:exceptionMessage>{escape(message)}</sf:exceptionMessage>"
        "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
