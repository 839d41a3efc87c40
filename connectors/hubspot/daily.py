"""crmsync's share of the HubSpot account's daily API limit ([hubspot] max_daily_share, R3).

HubSpot counts every API call of the account's private apps against one daily
limit (250,000 on Free/Starter, 625,000 on Professional, more with capacity
packs). crmsync spends at most `max_daily_share` of it, on reads and writes
alike, so the other integrations of the account keep theirs; it stops before
the call that would pass the share, as QuotaExhausted with the reset time.

Where the numbers come from (api-facts §2):

- Every response to a private-app call carries `X-HubSpot-RateLimit-Daily` and
  `X-HubSpot-RateLimit-Daily-Remaining` (a real header dump in
  HubSpot/hubspot-api-python#143). Search responses carry no rate-limit
  headers, so between two headers each call sent counts one.
- A run starts without headers: before its first call, crmsync asks
  `GET /account-info/v3/api-usage/daily/private-apps` once (usageLimit,
  currentUsage, resetsAt; developers.hubspot.com/docs/api-reference/legacy/
  account/account-information/get-usage-details). The call costs one request.
  A token that may not call it (403, 404) leaves the headers of the first
  answer to say the usage.
- OAuth calls carry no Daily pair "because there is no daily limit for these
  calls" (HubSpot changelog, "Rate limit headers will now appear for OAuth
  authenticated calls"), and the account-info endpoint is for private apps:
  the share cannot be enforced for OAuth apps, and crmsync says so once.
- The daily limit "resets at midnight based on your time zone setting"
  (HubSpot usage guidelines; developers.hubspot.com/apisbytier): `resetsAt`
  when the account-info API gave it, else the next midnight in
  `[hubspot] account_timezone`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

USAGE_PATH = "/account-info/v3/api-usage/daily/private-apps"
USAGE_NAME = "private-apps-api-calls-daily"


class DailyUsage:
    """The account's daily API usage as last seen, and the share crmsync may spend of it."""

    def __init__(self, share: float, timezone: str = "UTC") -> None:
        self.share = share
        self.timezone = timezone
        self.used: int | None = None
        self.limit: int | None = None
        self.resets_at: datetime | None = None

    @property
    def known(self) -> bool:
        return self.used is not None and bool(self.limit)

    def sent(self) -> None:
        """One more call sent: counted until the next header says the usage."""
        if self.used is not None:
            self.used += 1

    def observe_headers(self, headers: Mapping[str, Any] | None) -> bool:
        """Usage from X-HubSpot-RateLimit-Daily(-Remaining); False when they are absent."""
        if not headers:
            return False
        h = {str(k).lower(): v for k, v in headers.items()}
        limit = _int(h.get("x-hubspot-ratelimit-daily"))
        remaining = _int(h.get("x-hubspot-ratelimit-daily-remaining"))
        if limit is None or remaining is None:
            return False
        self.limit, self.used = limit, max(0, limit - remaining)
        return True

    def observe_usage(self, body: Any) -> bool:
        """Usage from the account-info API's answer; False when it holds none."""
        results = body.get("results") if isinstance(body, Mapping) else None
        for r in results or ():
            if not isinstance(r, Mapping) or r.get("name", USAGE_NAME) != USAGE_NAME:
                continue
            limit, used = _int(r.get("usageLimit")), _int(r.get("currentUsage"))
            if limit is None or used is None:
                continue
            # A CACHED answer may lag the headers of the same response: keep the larger count.
            seen = self.used if self.limit == limit else None
            self.limit, self.used = limit, max(used, seen or 0)
            self.resets_at = _datetime(r.get("resetsAt")) or self.resets_at
            return True
        return False

    def over_share(self) -> bool:
        """True when one more call would pass crmsync's share of the daily limit."""
        return self.known and (self.used or 0) + 1 > self.share * (self.limit or 0)

    def next_reset(self, now: datetime) -> datetime:
        """When the daily limit resets: resetsAt if known and ahead, else the next midnight
        in the account's time zone."""
        if self.resets_at is not None and self.resets_at > now:
            return self.resets_at
        tz = ZoneInfo(self.timezone)
        local = now.astimezone(tz)
        midnight = datetime(local.year, local.month, local.day, tzinfo=tz) + timedelta(days=1)
        return midnight.astimezone(UTC)


def _int(v: object) -> int | None:
    try:
        return int(str(v).strip())
    except (TypeError, ValueError):
        return None


def _datetime(v: object) -> datetime | None:
    if not isinstance(v, str) or not v:
        return None
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)
