"""HubSpot connection settings and the one door every HubSpot HTTP call goes through.

`Settings` is the [hubspot] table of sync.toml (sync/config.py fills it).

`HubSpotClient` builds hubspot-api-client's generated API objects once (each
`client.crm.contacts.basic_api` access builds a new ApiClient and connection
pool, api-facts §17) and sends every call through `call()`, which:

- waits for the client-side limiter (limiter.py),
- puts a current access token on the API object (auth.py),
- counts the HTTP request in `calls` by operation (retries included),
- reads the response with `_preload_content=False` and parses the JSON itself:
  `raw` is then the wire JSON and the rate-limit and Date headers are at hand,
- translates failures into connectors.errors and retries the transient ones
  with connectors.retry (Retry-After honoured, bounded).

urllib3 is given `Retry(0)`: its default `Retry(3)` would silently re-send
GETs on 429 (api-facts §16), hiding them from the limiter and from the
call count. With `Retry(0)` a refused connection or timeout raises
`urllib3.exceptions.MaxRetryError`, which becomes CrmUnavailable.

- spends at most `max_daily_share` of the account's daily API limit (daily.py):
  before each attempt it refuses the call that would pass the share, as
  QuotaExhausted, without a request; the first call of a run asks the
  account-info API for the usage first (private apps).

Error translation (HTTP status -> error):
    401            refresh once (OAuth) and resend; private app or second 401: AuthFailed
    403            AuthFailed (missing scopes; retrying will not help)
    429 DAILY      QuotaExhausted(retry_at = the daily reset, daily.py); no call after it
    429 other      RateLimited(retry_after = Retry-After header or None -> backoff)
    5xx, 0, I/O    CrmUnavailable
    other 4xx      CrmRefused with .status, .code (HubSpot category) and .detail (message)

A HubSpot error message can quote the values it refused ("Property values were
not valid: ... alan@example.com ..."), so it goes into `.detail` only: the
message of every error raised here names the operation, the HTTP status and
HubSpot's category, never HubSpot's words, and no error carries the client's
exception (whose text holds the whole response body) as its context.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import urllib3
from hubspot import HubSpot
from urllib3.util.retry import Retry

from crmsync.connectors.base import ApiCalls, Secret
from crmsync.connectors.errors import (
    AuthFailed,
    CrmError,
    CrmRefused,
    CrmUnavailable,
    QuotaExhausted,
    RateLimited,
    network_reason,
)
from crmsync.connectors.retry import DEFAULT_POLICY, RetryPolicy, call_with_retry

from .auth import OAuthTokens, PrivateAppToken, TokenSource
from .daily import USAGE_PATH, DailyUsage
from .fields import BUYING_ROLES
from .limiter import GENERAL, SEARCH, Limiter

log = logging.getLogger(__name__)

CRM = "hubspot"


@dataclass(frozen=True)
class Settings:
    """[hubspot] in sync.toml. Secrets arrive resolved (`token_env` / `token_file` etc.)."""

    host: str = "https://api.hubapi.com"  # sandbox: "http://127.0.0.1:PORT"
    auth: str = "private_app"  # private_app | oauth
    token: Secret | None = None
    client_id: str = ""
    client_secret: Secret | None = None
    refresh_token: Secret | None = None
    # Where a rotated OAuth refresh token is saved (the same file refresh_token_file names).
    refresh_token_file: Path | None = None
    tier_field: str = "hs_ideal_customer_profile"
    renewal_date_field: str = ""
    exempt_field: str = "crmsync_exempt"
    left_company_field: str = ""
    extra_properties: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    lookback_minutes: int = 5
    # How far HubSpot's search index may lag a write: a task crmsync created this recently
    # may not be found by its key (crash recovery, W4/W5) or listed (reconcile) yet. HubSpot
    # documents search as eventually consistent and gives no figure (api-facts §3; airbyte
    # #69203 re-reads a lookback for it); the default is P6's 5-minute lookback.
    search_lag_seconds: float = 300.0
    requests_per_10s: int = 100
    searches_per_second: int = 4
    # Not in the brief's table; optional:
    ca_file: Path | None = None  # extra CA bundle for a TLS-intercepting proxy
    timeout_seconds: float = 60.0
    account_timezone: str = "UTC"  # the daily limit resets at midnight here (R3)
    max_daily_share: float = 0.5  # of the account's daily API limit, reads and writes (daily.py)
    full_pull: str = "search"  # search | list (see pull.py for why search is the default)
    # hs_buying_role option -> role name; listed options override the defaults (BUYING_ROLES)
    buying_roles: Mapping[str, str] = field(default_factory=lambda: dict(BUYING_ROLES))
    # every incremental pull also reads the companies' and the deals' contact associations
    # (v4, 1,000 records per call) to see primary-company changes and deal-contact labels
    # that moved no date (pull.py "association sweep")
    sweep_associations: bool = True
    # Property lists kept in the mirror this long (issue 14; `crmsync setup` drops them)
    schema_max_age_hours: float = 24.0
    # Owners kept this long; a record naming an owner they lack re-reads them in the same run
    owners_max_age_minutes: float = 60.0

    @property
    def schema_max_age(self) -> timedelta:
        return timedelta(hours=self.schema_max_age_hours)

    @property
    def owners_max_age(self) -> timedelta:
        return timedelta(minutes=self.owners_max_age_minutes)

    def role_names(self) -> dict[str, str]:
        """hs_buying_role option -> role name: the defaults with [hubspot] buying_roles over them."""
        return {
            **BUYING_ROLES,
            **{k.strip().upper(): v.strip() for k, v in self.buying_roles.items()},
        }

    def validate(self) -> None:
        if self.auth not in ("private_app", "oauth"):
            raise ValueError(f'auth must be "private_app" or "oauth", not {self.auth!r}.')
        if self.auth == "private_app" and self.token is None:
            raise ValueError(
                'auth = "private_app" needs the app token: set token_env or token_file.'
            )
        if self.auth == "oauth":
            missing = [
                n
                for n, v in (
                    ("client_id", self.client_id),
                    ("client_secret_env / client_secret_file", self.client_secret),
                    ("refresh_token_env / refresh_token_file", self.refresh_token),
                )
                if not v
            ]
            if missing:
                raise ValueError(f'auth = "oauth" needs {", ".join(missing)}.')
        if not self.host.startswith(("http://", "https://")):
            raise ValueError(
                f"host must start with https:// (or http:// for the sandbox), not {self.host!r}."
            )
        if self.requests_per_10s < 1 or self.searches_per_second < 1:
            raise ValueError("requests_per_10s and searches_per_second must be at least 1.")
        if self.lookback_minutes < 0:
            raise ValueError("lookback_minutes must be 0 or more.")
        if self.search_lag_seconds < 0:
            raise ValueError(f"search_lag_seconds = {self.search_lag_seconds:g}: use 0 or more.")
        if self.timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds = {self.timeout_seconds}: use more than 0.")
        for name in ("schema_max_age_hours", "owners_max_age_minutes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} = {getattr(self, name):g}: use 0 (ask every run) or more.")
        if not 0 < self.max_daily_share <= 1:
            raise ValueError(
                f"max_daily_share = {self.max_daily_share}: use a fraction in (0, 1], e.g. 0.5"
            )
        for option, name in self.buying_roles.items():
            if not isinstance(name, str) or not name.strip() or not str(option).strip():
                raise ValueError(
                    f"buying_roles.{option} must name the role, for example "
                    'BUDGET_HOLDER = "Economic Buyer".'
                )
        if self.full_pull not in ("search", "list"):
            raise ValueError(f'full_pull must be "search" or "list", not {self.full_pull!r}.')
        try:
            ZoneInfo(self.account_timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f'account_timezone {self.account_timezone!r} is not an IANA time zone (e.g. "Europe/Berlin").'
            ) from None


class _AnswerLost(Exception):
    """A CrmUnavailable that must not be retried (connectors.retry retries CrmUnavailable)."""

    def __init__(self, error: CrmUnavailable) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: Any  # parsed JSON (dict/list) or None for an empty body


class _Unauthorized(Exception):
    pass


def _is_api_exception(e: BaseException) -> bool:
    return type(e).__module__.startswith("hubspot.") and hasattr(e, "status") and hasattr(e, "body")


class HubSpotClient:
    """Cached generated API objects and the counted, limited, retried `call()`."""

    def __init__(
        self,
        settings: Settings,
        *,
        calls: ApiCalls | None = None,
        limiter: Limiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        policy: RetryPolicy = DEFAULT_POLICY,
        token_source: TokenSource | None = None,
    ) -> None:
        self.settings = settings
        self.calls = calls if calls is not None else ApiCalls()
        self.sleep = sleep
        self.clock = clock
        self.wall_clock = wall_clock
        self.policy = policy
        self.limiter = limiter or Limiter(
            settings.requests_per_10s, settings.searches_per_second, clock=clock, sleep=sleep
        )
        kwargs: dict[str, Any] = {"host": settings.host.rstrip("/"), "retry": Retry(0)}
        if settings.ca_file:
            kwargs["ssl_ca_cert"] = str(settings.ca_file)
        self.sdk = HubSpot(**kwargs)
        self._apis: dict[str, Any] = {}
        self.auth = token_source or self._token_source()
        self.quota_stop: QuotaExhausted | None = None
        self.daily = DailyUsage(settings.max_daily_share, settings.account_timezone)
        self._usage_asked = False  # the account-info API was asked (or cannot be) this run
        self.last_headers: Mapping[str, str] = {}
        self._server_time: tuple[datetime, float] | None = None  # (Date header, clock() when seen)

    # ------------------------------------------------------------ setup

    def _token_source(self) -> TokenSource:
        s = self.settings
        if s.auth == "oauth":
            assert s.client_secret is not None and s.refresh_token is not None
            return OAuthTokens(
                client_id=s.client_id,
                client_secret=s.client_secret,
                refresh_token=s.refresh_token,
                refresh_token_file=s.refresh_token_file,
                request=self._token_request,
                clock=self.clock,
            )
        if s.token is None:
            raise AuthFailed("no HubSpot token configured", crm=CRM, operation="auth")
        return PrivateAppToken(s.token)

    def api(self, path: str) -> Any:
        """A generated API object by dotted path under the client, built once.

        e.g. api("crm.contacts.search_api"), api("crm.associations.v4.batch_api").
        """
        obj = self._apis.get(path)
        if obj is None:
            obj = self.sdk
            for part in path.split("."):
                obj = getattr(obj, part)
            self._apis[path] = obj
        return obj

    def add_api(self, path: str, obj: Any) -> None:
        """Register an API object hubspot-api-client lacks (account.py) for `call(.., path, ..)`."""
        self._apis[path] = obj

    # ------------------------------------------------------------ time

    def server_now(self) -> datetime | None:
        """HubSpot's clock now, from the last response's Date header (None before any)."""
        if self._server_time is None:
            return None
        seen, at = self._server_time
        return seen + timedelta(seconds=max(0.0, self.clock() - at))

    def _note_date(self, headers: Mapping[str, str]) -> None:
        raw = _header(headers, "date")
        if not raw:
            return
        try:
            dt = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        self._server_time = (dt.astimezone(UTC), self.clock())

    # ------------------------------------------------------------ calls

    def call(
        self, operation: str, api_path: str, method: str, *args: Any, **kwargs: Any
    ) -> Response:
        """Send one API call (limited, counted, authenticated, translated, retried)."""
        return self._call(operation, api_path, method, args, kwargs, resend_lost=True)

    def reach(self) -> bool:
        """Read the account's daily usage, as every run does before its first call (private
        apps; daily.py): a rejected token fails here (AuthFailed). False when that read was
        not made or not allowed (OAuth apps, a token without the scope): reaching the API
        then takes a call of its own."""

        def attempt() -> None:
            if self.quota_stop is not None:
                raise self.quota_stop
            self._check_daily_share("check")

        call_with_retry(
            attempt, operation="check", sleep=self.sleep, policy=self.policy,
            log_extra={"crm": CRM},
        )  # fmt: skip
        return self.daily.known

    def call_create(
        self, operation: str, api_path: str, method: str, *args: Any, **kwargs: Any
    ) -> Response:
        """`call` for a create: a call whose answer was lost (the connection dropped or timed
        out, a truncated body: no HTTP status) may have been applied, and sending it again
        would create a second record (W4), so it raises CrmUnavailable at once. A 429 or a
        5xx is HubSpot's own answer and is retried as usual."""
        return self._call(operation, api_path, method, args, kwargs, resend_lost=False)

    def _call(
        self,
        operation: str,
        api_path: str,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        resend_lost: bool,
    ) -> Response:
        kind = SEARCH if operation == "search" else GENERAL
        api = self.api(api_path)
        target = _object_of(api_path)

        def attempt() -> Response:
            if self.quota_stop is not None:
                raise self.quota_stop
            self._check_daily_share(operation)
            self.limiter.acquire(kind)
            token = self.auth.token()
            try:
                return self._send(operation, kind, api, method, token, args, kwargs, target=target)
            except _Unauthorized:
                fresh = self.auth.on_unauthorized(token)  # AuthFailed for private apps
                self.limiter.acquire(kind)
                try:
                    return self._send(
                        operation, kind, api, method, fresh, args, kwargs, target=target
                    )
                except _Unauthorized:
                    raise AuthFailed(
                        "HubSpot rejected a freshly refreshed access token (401). Check the app's "
                        "scopes and that it is still installed.",
                        crm=CRM,
                        operation=operation,
                        status=401,
                    ) from None

        def once() -> Response:
            try:
                return attempt()
            except CrmUnavailable as e:
                if resend_lost or e.status or isinstance(e, RateLimited):
                    raise
                raise _AnswerLost(e) from None

        try:
            return call_with_retry(
                once,
                operation=operation,
                sleep=self.sleep,
                policy=self.policy,
                log_extra={"crm": CRM},
            )
        except _AnswerLost as lost:
            raise lost.error from None

    def _send(
        self,
        operation: str,
        kind: str,
        api: Any,
        method: str,
        token: str | None,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        *,
        target: str = "",
    ) -> Response:
        self.calls.add(operation)
        self.daily.sent()
        if token is not None:
            api.api_client.configuration.access_token = token
        refused: Any = None
        try:
            raw = getattr(api, method)(
                *args,
                _preload_content=False,
                _request_timeout=self.settings.timeout_seconds,
                **kwargs,
            )
            try:
                data = raw.data
            finally:
                raw.release_conn()
            status, headers = raw.status, raw.headers
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise CrmUnavailable(
                f"HubSpot unreachable at {self.settings.host} during {operation}: "
                f"{network_reason(e)}",
                crm=CRM,
                operation=operation,
                code="CONNECTION",
                fix="Check [hubspot] host and the network.",
            ) from None
        except Exception as e:
            if not _is_api_exception(e):
                raise
            refused = e
        if refused is not None:
            # Raised outside the `except`: the ApiException (its text is the whole response
            # body, personal data included) must not ride along as the error's context.
            self._api_error(operation, kind, refused, target=target)
        self.last_headers = headers
        self._note_date(headers)
        self.daily.observe_headers(headers)
        self.limiter.observe(headers, kind)
        return Response(status, headers, _parse(data, operation))

    def _api_error(self, operation: str, kind: str, e: Any, *, target: str = "") -> NoReturn:
        status = int(e.status or 0)
        headers = e.headers or {}
        if headers:
            self.last_headers = headers
            self._note_date(headers)
            self.daily.observe_headers(headers)
        body = _json_or_none(e.body)
        category = body.get("category") if isinstance(body, dict) else None
        message = body.get("message") if isinstance(body, dict) else None
        common: dict[str, Any] = {"crm": CRM, "operation": operation, "status": status}
        if status == 401:
            raise _Unauthorized()
        if status == 429:
            policy = (
                str((body or {}).get("policyName") or "").upper() if isinstance(body, dict) else ""
            )
            if policy == "DAILY":
                self.quota_stop = QuotaExhausted(
                    "HubSpot's daily API limit is used up; crmsync stopped and keeps its "
                    "cursor. It can resume after midnight (account time).",
                    retry_at=self.daily.next_reset(self._now()),
                    code="DAILY",
                    detail=message,
                    **common,
                )
                raise self.quota_stop
            retry_after = _float(_header(headers, "retry-after"))
            self.limiter.rate_limited(retry_after, kind)
            raise RateLimited(
                f"HubSpot rate limit ({policy or 'unknown policy'}) during {operation}",
                retry_after=retry_after,
                code=policy or "RATE_LIMIT",
                detail=message,
                **common,
            )
        if status == 0 or status >= 500:
            raise CrmUnavailable(
                f"HubSpot answered {status} during {operation}",
                code=category,
                detail=message,
                **common,
            )
        if status == 403:
            raise AuthFailed(
                f"HubSpot refused {operation} (403 {category or ''}): the app lacks a scope. "
                "Add the CRM read/write scopes to the private app or OAuth app.",
                code=category,
                detail=message,
                **common,
            )
        on = f" on {target}" if target else ""
        raise CrmRefused(
            f"HubSpot refused {operation}{on} (HTTP {status} {category or 'no category'})",
            code=category,
            detail=message,
            fix="Run the same command with -v and report it if it persists.",
            **common,
        ) from None

    def _now(self) -> datetime:
        return self.server_now() or self.wall_clock()

    # ------------------------------------------------------------ the daily share (daily.py)

    def _check_daily_share(self, operation: str) -> None:
        """Refuse the call that would pass crmsync's share of the daily limit (no request)."""
        if not self._usage_asked:
            self._ask_daily_usage()
        if not self.daily.over_share():
            return
        d = self.daily
        reset = d.next_reset(self._now())
        self.quota_stop = QuotaExhausted(
            f"HubSpot API usage {d.used:,}/{d.limit:,} reached crmsync's share "
            f"({d.share:.0%}) of the account's daily limit; stopped before the next call "
            f"({operation}). The limit resets at midnight in the account's time zone: the "
            "next run resumes then, or raise [hubspot] max_daily_share.",
            crm=CRM,
            operation=operation,
            code="MAX_DAILY_SHARE",
            retry_at=reset,
        )
        log.warning(
            "hubspot daily share reached",
            extra={"crm": CRM, "used": d.used, "limit": d.limit, "share": d.share,
                   "retry_at": reset.isoformat()},
        )  # fmt: skip
        raise self.quota_stop

    def _ask_daily_usage(self) -> None:
        """Read the account's daily usage once per run, before its first call (daily.py).

        Inside the first call's attempt: an unreachable host fails (and is retried) as
        that call, within its one budget. A 429 DAILY stops the run as any call would.
        """
        if self.settings.auth == "oauth":
            self._usage_asked = True
            _say_once(
                ("oauth", self.settings.host),
                "HubSpot: [hubspot] max_daily_share is not enforced for OAuth apps: HubSpot "
                "documents no daily limit for them and their calls carry no daily usage",
            )
            return
        if self.daily.known:  # headers already told it
            self._usage_asked = True
            return
        self.limiter.acquire(GENERAL)
        token = self.auth.token()
        api = _Get(self.api("crm.owners.owners_api").api_client, USAGE_PATH)
        try:
            resp = self._send("daily_usage", GENERAL, api, "get", token, (), {})
        except _Unauthorized:
            self.auth.on_unauthorized(token)  # AuthFailed for a private app token
            return
        except (AuthFailed, CrmRefused) as e:
            # A token that may not read the usage: the first answer's headers will say it.
            self._usage_asked = True
            _say_once(
                ("usage", self.settings.host),
                f"HubSpot: the app may not read the account's daily API usage (HTTP {e.status}); "
                "crmsync counts it from the first answer's daily usage headers",
            )
            return
        self._usage_asked = True
        self.daily.observe_usage(resp.body)

    # ------------------------------------------------------------ OAuth token endpoint

    def _token_request(self, form: Mapping[str, str]) -> Mapping[str, Any]:
        """POST /oauth/v1/token through the client's tokens_api; counted under "auth"."""
        api = self.api("oauth.tokens_api")
        try:
            resp = self._send("auth", GENERAL, api, "create", None, (), dict(form))
        except _Unauthorized:
            resp = None
        except CrmError as e:
            if isinstance(e, CrmUnavailable) and not isinstance(e, RateLimited):
                raise
            if isinstance(e, RateLimited):
                raise
            raise AuthFailed(
                f"HubSpot refused the OAuth refresh token (HTTP {e.status} "
                f"{e.code or 'invalid_grant'}). Re-authorize the app and update [hubspot] "
                "refresh_token_file / refresh_token_env.",
                crm=CRM,
                operation="auth",
                status=e.status,
                code=e.code or "invalid_grant",
                detail=e.detail,
            ) from None
        if resp is None or not isinstance(resp.body, dict):
            raise AuthFailed(
                "HubSpot's OAuth token endpoint refused the client credentials (401). Check "
                "[hubspot] client_id and client_secret.",
                crm=CRM,
                operation="auth",
                status=401,
            )
        return resp.body


class _Get:
    """A GET on a path the generated API classes do not cover (the account-info API),
    sent through one of hubspot-api-client's own ApiClients (same host, token, pool)."""

    def __init__(self, api_client: Any, path: str) -> None:
        self.api_client = api_client
        self.path = path

    def get(self, **kwargs: Any) -> Any:
        return self.api_client.call_api(
            self.path,
            "GET",
            header_params={"Accept": "application/json"},
            auth_settings=["oauth2"],
            response_types_map={},
            **kwargs,
        )


_TOLD: set[tuple[str, str]] = set()


def _say_once(key: tuple[str, str], message: str) -> None:
    """Log `message` once per process (the daemon builds a connector per run)."""
    if key in _TOLD:
        return
    _TOLD.add(key)
    log.warning(message, extra={"crm": CRM})


def _object_of(api_path: str) -> str:
    """The CRM object an API path works on, for messages: "crm.contacts.search_api" -> contacts."""
    parts = [p for p in api_path.split(".") if p not in ("crm", "objects")]
    return parts[0] if parts and not parts[0].endswith("_api") else ""


def _parse(data: bytes | None, operation: str) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        raise CrmUnavailable(
            f"HubSpot sent an unreadable (truncated?) body during {operation}",
            crm=CRM,
            operation=operation,
        ) from None


def _json_or_none(body: Any) -> Any:
    if body is None:
        return None
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        return json.loads(body)
    except (TypeError, ValueError):
        return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    getter = getattr(headers, "get", None)
    if getter is None:
        return None
    v = getter(name)
    if v is None:
        for k, val in headers.items():
            if k.lower() == name:
                return str(val)
    return None if v is None else str(v)


def _float(v: str | None) -> float | None:
    try:
        return None if v is None else float(v)
    except ValueError:
        return None
