"""HubSpot rate limits in the emulator: sliding windows, daily quota, limit headers.

HubSpot (API notes §2.11) answers non-search calls with
X-HubSpot-RateLimit-{Daily,Daily-Remaining,Max,Remaining,Interval-Milliseconds,
Secondly,Secondly-Remaining} (OAuth calls omit the Daily pair) and, past a
limit, 429 with a RATE_LIMIT body naming the policy. Search has its own
per-second limit and no limit headers. The windows are measured on the
emulator clock and enforced only when `enabled` (the headers are always sent).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

POLICY_MESSAGES = {
    "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
    "SECONDLY": "You have reached your secondly limit.",
    "DAILY": "You have reached your daily limit.",
}


@dataclass
class RateLimits:
    """Configurable limits; `HubSpotSandbox(rate_limits=True | {...})` enables enforcement."""

    enabled: bool = False
    per_10s: int = 100
    search_per_second: int = 5
    daily: int = 250_000
    daily_used: int = 0
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

    def _trim(self, now: float) -> None:
        while self._calls and self._calls[0] <= now - 10.0:
            self._calls.popleft()
        while self._searches and self._searches[0] <= now - 1.0:
            self._searches.popleft()

    def admit(self, now: float, search: bool) -> tuple[str, int] | None:
        """Count one call; or (policy, retry-after seconds) when it is over a limit."""
        self._trim(now)
        if self.enabled:
            if self.daily_used >= self.daily:
                return "DAILY", _seconds_to_midnight(now)
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

    def reset_windows(self) -> None:
        self._calls.clear()
        self._searches.clear()


def _seconds_to_midnight(now: float) -> int:
    return max(1, int(86400 - (now % 86400)))
