"""HubSpot rate limits in the emulator: sliding windows, daily usage, limit headers.

HubSpot (api-facts §2) answers non-search calls with
X-HubSpot-RateLimit-{Daily,Daily-Remaining,Max,Remaining,Interval-Milliseconds,
Secondly,Secondly-Remaining} (OAuth calls omit the Daily pair) and, past a
limit, 429 with a RATE_LIMIT body naming the policy. Search has its own
per-second limit and no limit headers. The windows are measured on the
emulator clock and enforced only when `enabled` (the headers are always sent).

Daily usage: every API call counts one against `daily` (the account's limit);
`GET /account-info/v3/api-usage/daily/private-apps` reports it (`usage_body`).
The usage resets at `resets_at` (epoch seconds; by default the next midnight
UTC of the emulator clock: HubSpot resets at midnight in the account's time
zone), and then moves on a day. The DAILY 429 is answered once `daily_used`
reaches `daily` when `enabled`, or when the daily-usage knob is set
(`daily_enforced`, `HubSpotSandbox.set_daily_usage`), which leaves the
10-second and search windows off.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .store import iso

POLICY_MESSAGES = {
    "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
    "SECONDLY": "You have reached your secondly limit.",
    "DAILY": "You have reached your daily limit.",
}
DAY = 86_400.0


@dataclass
class RateLimits:
    """Configurable limits; `HubSpotSandbox(rate_limits=True | {...})` enables enforcement."""

    enabled: bool = False
    per_10s: int = 100
    search_per_second: int = 5
    daily: int = 250_000
    daily_used: int = 0
    daily_enforced: bool = False  # the daily-usage knob: the DAILY 429 without the windows
    resets_at: float | None = None  # epoch seconds; None: the next midnight UTC
    _calls: deque[float] = field(default_factory=deque)
    _searches: deque[float] = field(default_factory=deque)

    @classmethod
    def from_config(cls, cfg: bool | dict[str, Any] | None) -> RateLimits:
        if not cfg:
            return cls()
        if cfg is True:
            return cls(enabled=True)
        known = {"enabled", "per_10s", "search_per_second", "daily", "daily_used"}
        bad = set(cfg) - known
        if bad:
            raise ValueError(f"unknown rate limit keys {sorted(bad)}; known: {sorted(known)}")
        return cls(**{"enabled": True, **cfg})

    def set_daily_usage(
        self, *, used: int | None = None, limit: int | None = None, resets_at: float | None = None
    ) -> None:
        """The daily-usage knob: usage so far today, the daily limit, the next reset; turns
        the DAILY 429 on."""
        if limit is not None:
            self.daily = int(limit)
        if used is not None:
            self.daily_used = int(used)
        if resets_at is not None:
            self.resets_at = float(resets_at)
        self.daily_enforced = True

    def _trim(self, now: float) -> None:
        while self._calls and self._calls[0] <= now - 10.0:
            self._calls.popleft()
        while self._searches and self._searches[0] <= now - 1.0:
            self._searches.popleft()

    def _roll(self, now: float) -> float:
        """The next reset time; past it, the day's usage starts again at 0."""
        if self.resets_at is None:
            self.resets_at = _next_midnight(now)
        if now >= self.resets_at:
            self.daily_used = 0
            self.resets_at = _next_midnight(now)
        return self.resets_at

    def admit(self, now: float, search: bool) -> tuple[str, int] | None:
        """Count one call; or (policy, retry-after seconds) when it is over a limit."""
        self._trim(now)
        resets_at = self._roll(now)
        if (self.enabled or self.daily_enforced) and self.daily_used >= self.daily:
            return "DAILY", max(1, math.ceil(resets_at - now))
        if self.enabled:
            if search and len(self._searches) >= self.search_per_second:
                return "SECONDLY", max(1, math.ceil(self._searches[0] + 1.0 - now))
            if not search and len(self._calls) >= self.per_10s:
                return "TEN_SECONDLY_ROLLING", max(1, math.ceil(self._calls[0] + 10.0 - now))
        self.daily_used += 1
        (self._searches if search else self._calls).append(now)
        return None

    def headers(self, now: float, oauth: bool) -> dict[str, str]:
        self._trim(now)
        last_second = sum(1 for t in self._calls if t > now - 1.0)
        per_second = max(1, self.per_10s // 10)
        h = {
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": str(self.per_10s),
            "X-HubSpot-RateLimit-Remaining": str(max(0, self.per_10s - len(self._calls))),
            "X-HubSpot-RateLimit-Secondly": str(per_second),
            "X-HubSpot-RateLimit-Secondly-Remaining": str(max(0, per_second - last_second)),
        }
        if not oauth:
            h["X-HubSpot-RateLimit-Daily"] = str(self.daily)
            h["X-HubSpot-RateLimit-Daily-Remaining"] = str(max(0, self.daily - self.daily_used))
        return h

    def usage_body(self, now: float) -> dict[str, Any]:
        """GET /account-info/v3/api-usage/daily/private-apps, as HubSpot documents it."""
        resets_at = self._roll(now)
        return {
            "results": [
                {
                    "collectedAt": iso(int(now * 1000)),
                    "currentUsage": self.daily_used,
                    "fetchStatus": "SUCCESS",
                    "name": "private-apps-api-calls-daily",
                    "resetsAt": iso(int(resets_at * 1000)),
                    "usageLimit": self.daily,
                }
            ]
        }

    def reset_windows(self) -> None:
        self._calls.clear()
        self._searches.clear()


def _next_midnight(now: float) -> float:
    return (now // DAY + 1) * DAY
