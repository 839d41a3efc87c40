"""The [salesforce] settings and the simple-salesforce client built from them.

`Settings` is what the config loader fills from sync.toml (secrets arrive as
connectors.base.Secret). `build_salesforce(settings, session)` logs in by the
configured auth mode; every request goes through the requests.Session from
transport.build_session, so login hosts, instance URL and CA bundle are
honoured (api-facts §15).

`SalesforceClient` wraps that client with what every call needs:

- counting: a response hook on the session counts every HTTP request by
  operation into `ApiCalls` (query pages, describes, bulk, composite, ...;
  logins and simple-salesforce's silent re-logins count as "auth", never as
  "query"), including retries;
- limits: the same hook parses `Sforce-Limit-Info` from every response
  (bulk and tooling included) into `quota()`, and remembers the server's
  `Date` header (`server_time`: cursors are capped by the server's clock, not
  ours -- RELIABILITY O5);
- a quota guard before every attempt: once usage reaches `max_daily_share` of
  the allocation, or Salesforce answered 403 REQUEST_LIMIT_EXCEEDED
  (TotalRequests), every further call raises QuotaExhausted without a request;
- retries through connectors.retry (5xx, resets, timeouts, truncated JSON,
  ConcurrentRequests limit);
- translation of every simple-salesforce / requests exception into the
  connectors.errors tree (`translate`). Salesforce's error messages can quote
  the value they refused (`INVALID_EMAIL_ADDRESS: Email: invalid email address:
  alan@...`): they go into `.detail` only; an error's message names the
  operation, the HTTP status and Salesforce's errorCode, and simple-salesforce's
  exception (whose text is the whole response body) is never chained to it.

Session expiry (INVALID_SESSION_ID) is renewed by simple-salesforce itself for
the login modes on every call that goes through `Salesforce._call_salesforce`
(query, query_more, restful, toolingexecute and the raw bulk-results call
here), at most 3 times per call; auth="refresh_token" (auth.py: direct mode,
which simple-salesforce never renews) asks the token endpoint for a new access
token once and retries the call; auth="session" cannot renew and fails as
AuthFailed.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceOperationError,
)
from simple_salesforce.format import format_soql

from crmsync.connectors.base import ApiCalls, Quota, Secret
from crmsync.connectors.errors import (
    AuthFailed,
    ConfigError,
    CrmError,
    CrmRefused,
    CrmUnavailable,
    QuotaExhausted,
    RateLimited,
    network_reason,
)
from crmsync.connectors.retry import DEFAULT_POLICY, RetryPolicy, Sleep, call_with_retry
from crmsync.connectors.salesforce.auth import RefreshTokenAuth
from crmsync.connectors.salesforce.transport import build_session
from crmsync.state.schema_cache import MemorySchemaStore, SchemaStore

log = logging.getLogger(__name__)

T = TypeVar("T")
CRM = "salesforce"
_ONE_ATTEMPT = RetryPolicy(max_attempts=1)
# Login faults that say "try again", not "wrong credentials" (SOAP exceptionCode / OAuth error).
_TRANSIENT_LOGIN_CODES = frozenset(
    {"SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"}
)
AUTH_MODES = ("password", "oauth_password", "jwt", "client_credentials", "refresh_token", "session")
BULK_MODES = ("auto", "never", "always")


@dataclass(frozen=True)
class Settings:
    """[salesforce] in sync.toml. Secret fields come resolved from `<name>_env` / `<name>_file`.

    Keys beyond the team brief's table (all optional): `fields` overrides owned
    field names per sObject (e.g. {"Account": {"coverage_score": "Score__c"}});
    `timeout_seconds` per HTTP request; `skew_seconds`, the margin a cursor
    stays behind the server's clock; `check_deleted` asks getDeleted on every
    incremental pull (one extra call per object, catches hard deletes between
    reconciliations); `bulk_max_wait_seconds` bounds a Bulk 2.0 job before
    falling back to REST; `bulk_max_records` is the Bulk results page size;
    `composite_pages` (1-5, default 1 = off) fetches up to that many query pages
    per API call by chaining them in one /composite request (docs/budgets.md: derived,
    not yet verified against a real org, hence opt-in); `grant_read_to` names who
    `crmsync setup` lets read crmsync's fields (profile names, or usernames: an entry
    with an "@"; connectors/salesforce/access.py); `refresh_token` (with
    `consumer_key` and `consumer_secret`) is the OAuth refresh token of auth =
    "refresh_token" (auth.py).
    """

    enabled: bool = True
    auth: str = "password"
    login_url: str = "https://login.salesforce.com"
    instance_url: str = ""
    ca_file: str = ""
    username: str = ""
    password: Secret | None = None
    security_token: Secret | None = None
    consumer_key: str = ""
    consumer_secret: Secret | None = None
    private_key_file: str = ""
    session_id: Secret | None = None
    api_version: str = "59.0"
    tier_field: str = "Tier__c"
    renewal_date_field: str = ""
    exempt_field: str = "Crmsync_Exempt__c"
    left_company_field: str = ""
    extra_fields: Mapping[str, Any] = field(default_factory=dict)
    lookback_minutes: float = 5
    max_daily_share: float = 0.5
    bulk: str = "auto"
    fields: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    timeout_seconds: float = 60.0
    skew_seconds: float = 60.0
    check_deleted: bool = False
    bulk_max_wait_seconds: float = 900.0
    bulk_max_records: int = 50_000
    composite_pages: int = 1
    grant_read_to: tuple[str, ...] = ()
    refresh_token: Secret | None = None
    schema_max_age_hours: float = 24.0

    def __post_init__(self) -> None:
        if self.auth not in AUTH_MODES:
            raise ValueError(
                f"[salesforce] auth = {self.auth!r}: use one of {', '.join(AUTH_MODES)}"
            )
        if self.bulk not in BULK_MODES:
            raise ValueError(
                f"[salesforce] bulk = {self.bulk!r}: use one of {', '.join(BULK_MODES)}"
            )
        if not 0 < self.max_daily_share <= 1:
            raise ValueError(
                f"[salesforce] max_daily_share = {self.max_daily_share}: use a fraction in (0, 1], e.g. 0.5"
            )
        if not 1 <= self.composite_pages <= 5:
            raise ValueError(
                f"[salesforce] composite_pages = {self.composite_pages}: use 1 (off) to 5"
            )
        for name, low, exclusive in (
            ("timeout_seconds", 0, True),
            ("skew_seconds", 0, False),
            ("lookback_minutes", 0, False),
            ("bulk_max_wait_seconds", 0, False),
            ("bulk_max_records", 1, False),
            ("schema_max_age_hours", 0, False),
        ):
            value = getattr(self, name)
            if value < low or (exclusive and value == low):
                bound = f"more than {low}" if exclusive else f"{low} or more"
                raise ValueError(f"[salesforce] {name} = {value}: use {bound}.")
        if self.api_version.startswith("v"):
            raise ValueError(
                f"[salesforce] api_version = {self.api_version!r}: drop the leading 'v'"
            )

    @property
    def lookback(self) -> timedelta:
        return timedelta(minutes=self.lookback_minutes)

    @property
    def skew(self) -> timedelta:
        return timedelta(seconds=self.skew_seconds)

    @property
    def schema_max_age(self) -> timedelta:
        return timedelta(hours=self.schema_max_age_hours)


# ------------------------------------------------------------------ building the client


def login_domain(login_url: str, auth: str) -> tuple[str, str | None]:
    """simple-salesforce's `domain` for a login URL, and a host to route to login_url if any.

    "https://login.salesforce.com" -> "login"; "https://test.salesforce.com" ->
    "test"; "https://acme.my.salesforce.com" -> "acme.my". Any other host (the
    loopback sandbox, a proxy) -> "login", which transport.py routes to
    login_url; client credentials refuse "login"/"test", so they get a private
    host name that we route to login_url ourselves.
    """
    host = (urlsplit(login_url).hostname or "").lower()
    if host.endswith(".salesforce.com"):
        return host[: -len(".salesforce.com")], None
    if auth == "client_credentials":
        return "crmsync-login", "crmsync-login.salesforce.com"
    return "login", None


def _reveal(secret: Secret | None) -> str:
    return secret.reveal() if secret is not None else ""


def _require(settings: Settings, *names: str) -> None:
    missing = [n for n in names if not getattr(settings, n)]
    if missing:
        hints = [f"{n}_env or {n}_file" if n in _SECRETS else n for n in missing]
        raise ConfigError(
            f"[salesforce] auth = {settings.auth!r} needs {', '.join(hints)} in sync.toml",
            fix="Add the missing settings to the [salesforce] table.",
        )


def check_private_key(path: str) -> bytes:
    """The PEM-encoded RSA private key at `path` (auth = "jwt"), or ConfigError naming
    `[salesforce] private_key_file` and the fix. The config loader calls this at start;
    the login calls it again, as the file may have changed since."""
    key = "[salesforce] private_key_file"
    fix = (
        "Put the connected app's private key there (PEM, unencrypted: -----BEGIN PRIVATE KEY-----), "
        "or point private_key_file at it."
    )
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"{key}: cannot read {path} ({e.strerror or e})", fix=fix) from None
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        loaded = load_pem_private_key(data, password=None)
    except TypeError:
        raise ConfigError(f"{key}: {path} is an encrypted private key", fix=fix) from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(f"{key}: {path} is not a PEM private key", fix=fix) from None
    if not isinstance(loaded, RSAPrivateKey):
        raise ConfigError(
            f"{key}: {path} is not an RSA key (Salesforce signs JWTs with RS256)", fix=fix
        )
    return data


_SECRETS = ("password", "security_token", "consumer_secret", "session_id", "refresh_token")


def build_session_for(settings: Settings) -> requests.Session:
    session = build_session(
        login_url=settings.login_url or None,
        instance_url=settings.instance_url or None,
        ca_file=settings.ca_file or None,
        timeout=settings.timeout_seconds,
    )
    _, route = login_domain(settings.login_url, settings.auth)
    if route and settings.login_url:
        adapter = session.get_adapter("https://")
        adapter.routes[route] = urlsplit(settings.login_url)  # type: ignore[attr-defined]
    return session


# simple-salesforce parses JSON into OrderedDicts unless told otherwise ("To use python
# 'dict' change it to None or dict", its Salesforce() docstring): a query page of 2,000
# records then takes about 2.6x the memory of plain dicts (which keep order too) and
# parses slower, since the pairs hook is Python code called per object.
JSON_OBJECTS = None


def build_salesforce(settings: Settings, session: requests.Session) -> Salesforce:
    """Log in (or not, for auth="session") and return the simple-salesforce client."""
    domain, _ = login_domain(settings.login_url, settings.auth)
    common: dict[str, Any] = {
        "session": session,
        "version": settings.api_version,
        "object_pairs_hook": JSON_OBJECTS,
    }
    if settings.auth == "session":
        _require(settings, "session_id", "instance_url")
        return Salesforce(
            session_id=_reveal(settings.session_id), instance_url=settings.instance_url, **common
        )
    if settings.auth == "refresh_token":
        raise ValueError("auth = refresh_token logs in through SalesforceClient (auth.py)")
    common["domain"] = domain
    if settings.auth == "password":
        _require(settings, "username", "password")
        return Salesforce(
            username=settings.username,
            password=_reveal(settings.password),
            security_token=_reveal(settings.security_token),
            **common,
        )
    if settings.auth == "oauth_password":
        _require(settings, "username", "password", "consumer_key", "consumer_secret")
        return Salesforce(
            username=settings.username,
            # The OAuth password flow wants the security token appended (unless IP-trusted).
            password=_reveal(settings.password) + _reveal(settings.security_token),
            consumer_key=settings.consumer_key,
            consumer_secret=_reveal(settings.consumer_secret),
            **common,
        )
    if settings.auth == "jwt":
        _require(settings, "username", "consumer_key", "private_key_file")
        return Salesforce(
            username=settings.username,
            consumer_key=settings.consumer_key,
            privatekey=check_private_key(settings.private_key_file).decode("ascii"),
            **common,
        )
    _require(settings, "consumer_key", "consumer_secret")
    return Salesforce(
        consumer_key=settings.consumer_key,
        consumer_secret=_reveal(settings.consumer_secret),
        **common,
    )


# ------------------------------------------------------------------ errors


def _error_body(content: Any) -> tuple[str | None, str]:
    """(errorCode, message) from a Salesforce error body (usually a JSON list)."""
    if isinstance(content, bytes | bytearray):
        content = content.decode("utf-8", "replace")
    if isinstance(content, str):
        try:
            content = json.loads(content)
        except ValueError:
            return None, content[:500]
    if isinstance(content, list) and content and isinstance(content[0], Mapping):
        first = content[0]
        return first.get("errorCode"), str(first.get("message") or "")
    if isinstance(content, Mapping):
        code = content.get("errorCode") or content.get("error")
        return code, str(content.get("message") or content.get("error_description") or "")
    return None, str(content)[:500]


# Library exceptions whose text quotes the CRM's answer (kept in CrmError.detail instead).
_QUOTES_BODY = (SalesforceError, SalesforceAuthenticationFailed, SalesforceOperationError)


def translate(
    exc: BaseException,
    operation: str,
    *,
    retry_after: float | None = None,
    now: datetime | None = None,
) -> CrmError | None:
    """The connectors.errors equivalent of a library exception, or None if it is not one."""
    kw: dict[str, Any] = {"crm": CRM, "operation": operation}
    if isinstance(exc, CrmError):
        return exc
    if isinstance(exc, SalesforceAuthenticationFailed):
        code = exc.code
        transient = isinstance(code, str) and code.upper() in _TRANSIENT_LOGIN_CODES
        if transient or isinstance(code, int) and (code >= 500 or code == 429):
            return CrmUnavailable(
                f"Salesforce login endpoint unavailable ({code})",
                status=code if isinstance(code, int) else None,
                code=None if isinstance(code, int) else code,
                **kw,
            )
        return AuthFailed(
            f"Salesforce login failed ({code}). Check the [salesforce] "
            "auth settings and the secrets they name.",
            status=401,
            code=str(code) if code is not None else None,
            detail=exc.auth_message,
            **kw,
        )
    if isinstance(exc, SalesforceError):
        return _translate_status(exc, retry_after, now, kw)
    if isinstance(exc, SalesforceOperationError):
        return CrmError(
            "Salesforce Bulk API job failed (BULK_JOB_FAILED)",
            code="BULK_JOB_FAILED",
            detail=str(exc),
            **kw,
        )
    if isinstance(exc, requests.exceptions.SSLError):
        return CrmUnavailable(
            f"TLS verification failed talking to Salesforce ({type(exc).__name__}); if a proxy "
            "or the sandbox signs the traffic, name its CA bundle in [salesforce] ca_file",
            code="TLS_ERROR",
            **kw,
        )
    if isinstance(exc, requests.exceptions.JSONDecodeError):
        return CrmUnavailable(
            "Salesforce sent a truncated or invalid JSON body", code="BAD_BODY", **kw
        )
    if isinstance(
        exc,
        requests.exceptions.ConnectionError
        | requests.exceptions.Timeout
        | requests.exceptions.ChunkedEncodingError
        | requests.exceptions.ContentDecodingError,
    ):
        request = getattr(exc, "request", None)
        url = urlsplit(getattr(request, "url", None) or "")
        where = f" at {url.scheme}://{url.netloc}" if url.netloc else ""
        return CrmUnavailable(
            f"Salesforce unreachable{where} during {operation}: {network_reason(exc)}",
            code="CONNECTION",
            fix="Check [salesforce] login_url / instance_url and the network.",
            **kw,
        )
    return None


def _translate_status(
    exc: SalesforceError, retry_after: float | None, now: datetime | None, kw: dict[str, Any]
) -> CrmError:
    status = int(exc.status)
    code, message = _error_body(exc.content)
    kw.update(status=status, code=code, detail=message)
    if status == 401:
        return AuthFailed(
            "Salesforce rejected the session and it could not be renewed "
            f'({code or "HTTP 401"}). With auth = "session" put a fresh session id in place; '
            "otherwise check the credentials.",
            **kw,
        )
    if status == 403 and code == "REQUEST_LIMIT_EXCEEDED":
        if "concurrent" in message.lower():
            return RateLimited(
                f"Salesforce concurrent request limit hit ({code})", retry_after=retry_after, **kw
            )
        retry_at = (now or datetime.now(UTC)) + timedelta(hours=1)
        return QuotaExhausted(
            f"Salesforce daily API allocation exhausted ({code}). The allocation is a rolling "
            "24 hours: retry in about an hour; the cursor is kept.",
            retry_at=retry_at,
            **kw,
        )
    if status == 429:
        return RateLimited(
            "Salesforce rate limit (HTTP 429" + (f" {code})" if code else ")"),
            retry_after=retry_after,
            **kw,
        )
    if status >= 500:
        err = CrmUnavailable(f"Salesforce unavailable (HTTP {status})", **kw)
        err.retry_after = retry_after
        return err
    # The message stays in .detail: Salesforce echoes the values it refused.
    return CrmRefused(
        f"Salesforce refused {kw['operation']} (HTTP {status}" + (f" {code})" if code else ")"),
        **kw,
    )


# ------------------------------------------------------------------ the client


def _http_date(when: datetime | None) -> str | None:
    """An HTTP-date (If-Modified-Since's format: "EEE, dd MMM yyyy HH:mm:ss z")."""
    return format_datetime(when.astimezone(UTC), usegmt=True) if when else None


_OPERATIONS = (
    ("/services/soap/", "auth"),
    ("/services/oauth2/", "auth"),
    ("/jobs/query", "bulk"),
    ("/jobs/ingest", "bulk_ingest"),
    ("/tooling/", "tooling"),
    ("/composite", "composite"),
    ("/describe", "describe"),
    ("/deleted", "get_deleted"),
    ("/queryall", "query"),
    ("/query", "query"),
    ("/limits", "limits"),
)


def operation_of(url: str) -> str:
    """The ApiCalls operation an HTTP request counts under, from its path."""
    path = urlsplit(url).path.lower()
    for needle, op in _OPERATIONS:
        if needle in path:
            return op
    return "other"


class SalesforceClient:
    """simple-salesforce plus counting, limits, quota guard, retries and error translation."""

    def __init__(
        self,
        settings: Settings,
        calls: ApiCalls,
        *,
        sleep: Sleep = time.sleep,
        retry: RetryPolicy = DEFAULT_POLICY,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.calls = calls
        self.sleep = sleep
        self.retry = retry
        self.rng = rng or random.Random()
        self.session = build_session_for(settings)
        self.session.hooks["response"].append(self._on_response)
        self._sf: Salesforce | None = None
        self.used: int | None = None
        self.limit: int | None = None
        self.server_time: datetime | None = None
        self._retry_after: float | None = None
        self._exhausted: QuotaExhausted | None = None
        self._describes: dict[str, Mapping[str, Any]] = {}  # this run's, by sObject
        self._described_now: set[str] = set()  # asked of Salesforce this run
        # Describes kept between runs (the mirror's, once sync/run.py hands it over).
        self.schema: SchemaStore = MemorySchemaStore()
        self._refresher: RefreshTokenAuth | None = None
        self._user_id: str | None = None  # the integration user, once known

    # -------------------------------------------------------------- hook

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.calls.add(operation_of(response.request.url or response.url or ""))
        info = response.headers.get("Sforce-Limit-Info")
        if info:
            usage = Salesforce.parse_api_usage(info).get("api-usage")
            if usage is not None:
                self.used, self.limit = usage.used, usage.total
        date = response.headers.get("Date")
        if date:
            try:
                self.server_time = parsedate_to_datetime(date).astimezone(UTC)
            except (TypeError, ValueError):
                pass
        retry_after = response.headers.get("Retry-After")
        try:
            self._retry_after = float(retry_after) if retry_after else None
        except ValueError:
            self._retry_after = None

    # -------------------------------------------------------------- auth

    @property
    def sf(self) -> Salesforce:
        """The logged-in client. The login happens on first use, inside the calling
        operation's attempt: its retries are that operation's, never a budget of their own
        (nested budgets multiplied into 30 attempts over two minutes for a dead host)."""
        if self._sf is None:
            self._sf = self._translated("auth", self._login)
        return self._sf

    def _login(self) -> Salesforce:
        if self.settings.auth != "refresh_token":
            return build_salesforce(self.settings, self.session)
        if self._refresher is None:
            _require(self.settings, "consumer_key", "consumer_secret", "refresh_token")
            assert self.settings.consumer_secret is not None
            assert self.settings.refresh_token is not None
            self._refresher = RefreshTokenAuth(
                login_url=self.settings.login_url,
                client_id=self.settings.consumer_key,
                client_secret=self.settings.consumer_secret,
                refresh_token=self.settings.refresh_token,
                session=self.session,
            )
        grant = self._refresher.grant()
        self._user_id = grant.user_id or self._user_id
        return Salesforce(
            session_id=grant.access_token,
            instance_url=grant.instance_url or self.settings.instance_url,
            session=self.session,
            version=self.settings.api_version,
            object_pairs_hook=JSON_OBJECTS,
        )

    def _renew(self, exc: AuthFailed) -> bool:
        """After INVALID_SESSION_ID in refresh_token mode: a new access token (True), or
        False when this mode or this error cannot be renewed that way."""
        if self.settings.auth != "refresh_token" or exc.code != "INVALID_SESSION_ID":
            return False
        log.info("salesforce session expired; refreshing the access token", extra={"crm": CRM})
        self._sf = None
        _ = self.sf
        return True

    def user_id(self) -> str:
        """The Id of the user crmsync logs in as (setup assigns it a permission set): from the
        refresh-token answer's identity URL, else by `username`, else the OpenID Connect
        UserInfo endpoint (Salesforce help "Query for User Information")."""
        if self._user_id is None:
            _ = self.sf
        if self._user_id is None and self.settings.username:
            soql = format_soql("SELECT Id FROM User WHERE Username = {}", self.settings.username)
            rows = self.query(soql, include_deleted=False, headers={}).get("records") or []
            if rows:
                self._user_id = str(rows[0]["Id"])
        if self._user_id is None:
            info = self.call(
                "auth",
                lambda sf: sf._call_salesforce(
                    "GET", f"https://{sf.sf_instance}/services/oauth2/userinfo", name="userinfo"
                ).json(),
            )
            self._user_id = str(info.get("user_id") or "") or None
        if self._user_id is None:
            raise CrmError(
                "Salesforce did not say which user crmsync logs in as",
                crm=CRM,
                operation="auth",
                code="NO_USER",
            )
        return self._user_id

    # -------------------------------------------------------------- calls

    def call(
        self, operation: str, fn: Callable[[Salesforce], T], *, retry: bool = True, **log_extra: Any
    ) -> T:
        """Run fn(sf) under the quota guard, with retries and error translation.

        `retry=False` makes one attempt only (a create whose outcome is unknown after a
        lost answer must be looked up, not sent again: push.py). An expired session is
        renewed once in refresh_token mode either way (the refused call changed nothing).
        """

        def attempt() -> T:
            try:
                return self._translated(operation, lambda: fn(self.sf))
            except AuthFailed as exc:
                if not self._renew(exc):
                    raise
            return self._translated(operation, lambda: fn(self.sf))

        return call_with_retry(
            attempt,
            operation=operation,
            policy=self.retry if retry else _ONE_ATTEMPT,
            sleep=self.sleep,
            rng=self.rng,
            log_extra={"crm": CRM, **log_extra},
            before_attempt=self.check_quota,
        )

    def _translated(self, operation: str, fn: Callable[[], T]) -> T:
        self._retry_after = None
        try:
            return fn()
        except Exception as exc:
            err = translate(exc, operation, retry_after=self._retry_after, now=self.server_time)
            if isinstance(err, QuotaExhausted):
                self._exhausted = err  # no further call this run (R5)
            if err is None or err is exc:
                raise
            # simple-salesforce's exceptions quote the whole response body, which can echo
            # personal data (INVALID_EMAIL_ADDRESS: ...): never chain one into a traceback.
            raise err from (None if isinstance(exc, _QUOTES_BODY) else exc)

    def restful(self, path: str, *, operation: str, retry: bool = True, **kwargs: Any) -> Any:
        return self.call(operation, lambda sf: sf.restful(path, **kwargs), retry=retry)

    def raw(self, method: str, path: str, *, operation: str, **kwargs: Any) -> requests.Response:
        """A request relative to the REST base URL returning the Response (e.g. CSV bodies).

        Goes through simple-salesforce's own request method so an expired
        session is renewed as for any other call.
        """
        return self.call(
            operation,
            lambda sf: sf._call_salesforce(method, sf.base_url + path, name=operation, **kwargs),
        )

    def query(self, soql: str, *, include_deleted: bool, headers: Mapping[str, str]) -> Any:
        return self.call(
            "query",
            lambda sf: sf.query(soql, include_deleted=include_deleted, headers=dict(headers)),
        )

    def query_more(self, next_url: str, *, headers: Mapping[str, str]) -> Any:
        return self.call(
            "query",
            lambda sf: sf.query_more(next_url, identifier_is_url=True, headers=dict(headers)),
        )

    def describe(self, sobject: str) -> Mapping[str, Any]:
        """The sObject's describe: at most one call per object and run, none while the kept
        describe is younger than `schema_max_age_hours` (issue 14).

        An older one is asked for again with If-Modified-Since (its own response's Date):
        "When using the If-Modified-Since header, if no available object's metadata has
        changed since the provided date, a 304 Not Modified status code is returned with
        no response body" (REST API Developer Guide, "sObject Describe" and "Get Object
        Metadata Changes"); a 304 keeps the describe another max age.
        """
        if sobject in self._describes:
            return self._describes[sobject]
        key = f"describe:{sobject}"
        kept = self.schema.get(key)
        if kept is not None and kept.fresh(self.schema.now, self.settings.schema_max_age):
            self._describes[sobject] = kept.body
            return kept.body  # type: ignore[no-any-return]
        headers = {"If-Modified-Since": kept.validator} if kept and kept.validator else {}
        path = f"sobjects/{sobject}/describe"

        def fetch(sf: Salesforce) -> tuple[Any, str | None]:
            try:
                response = sf._call_salesforce(
                    "GET", sf.base_url + path, name=path, headers=headers
                )
            except SalesforceError as exc:
                if exc.status == 304:  # simple-salesforce raises for any status >= 300
                    return None, None
                raise
            return response.json(), response.headers.get("Date")

        body, date = self.call("describe", fetch)
        self._described_now.add(sobject)
        if body is None and kept is not None:
            self.schema.confirm(key)
            body = kept.body
        else:
            self.schema.put(key, body, validator=date or _http_date(self.server_time))
        self._describes[sobject] = body
        return body  # type: ignore[no-any-return]

    def kept(self, sobject: str) -> bool:
        """The describe of `sobject` in use came from an earlier run (not asked this run)."""
        return sobject in self._describes and sobject not in self._described_now

    def forget_describe(self, sobject: str) -> None:
        """Describe `sobject` afresh on next use (a query named a field the org lacks, or
        setup changed its fields): this run's and the kept describe both go."""
        self._describes.pop(sobject, None)
        self.schema.drop(f"describe:{sobject}")

    # -------------------------------------------------------------- quota

    def quota(self) -> Quota:
        return Quota(used=self.used, limit=self.limit)

    def check_quota(self) -> None:
        """Refuse the next call once crmsync's share of the daily allocation is spent (R5, R6)."""
        if self._exhausted is not None:
            raise self._exhausted
        if self.used is None or not self.limit:
            return
        share = self.settings.max_daily_share
        if self.used >= share * self.limit:
            self._exhausted = QuotaExhausted(
                f"Salesforce API usage {self.used:,}/{self.limit:,} reached crmsync's share "
                f"({share:.0%}) of the org's daily allocation; stopped before the next call. "
                "The allocation is a rolling 24 hours: retry later, or raise "
                "[salesforce] max_daily_share.",
                crm=CRM,
                operation="quota",
                code="MAX_DAILY_SHARE",
                retry_at=(self.server_time or datetime.now(UTC)) + timedelta(hours=1),
            )
            log.warning(
                "salesforce quota share reached",
                extra={"crm": CRM, "used": self.used, "limit": self.limit, "share": share},
            )
            raise self._exhausted
