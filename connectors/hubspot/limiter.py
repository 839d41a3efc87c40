"""Client-side rate limiter for HubSpot, so a run never relies on 429s to slow down (R4).

HubSpot enforces a rolling 10-second budget per account (100 requests on
Free/Starter private apps, 190 higher up) and a separate per-second budget for
CRM search (4-5/s). Both are sliding windows on HubSpot's side, so the limiter
keeps one sliding window of send times per budget: a call waits until fewer
than `limit` calls were sent in the last `window` seconds. Search calls count
in both windows (HubSpot does not document that they are exempt from the
general budget; counting them twice costs nothing since 4/s < 10/s).

The limiter also reads the `X-HubSpot-RateLimit-*` headers of every response:
when the server says fewer than `reserve` calls remain in its window (other
apps share the account's budget), the next call waits for roughly the time
that many slots take to free up. A 429 (which should not happen) pauses the
window for its Retry-After as well.

Clock and sleep are injectable so tests run on fake time.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

Clock = Callable[[], float]
Sleep = Callable[[float], None]

GENERAL = "general"
SEARCH = "search"


class SlidingWindow:
    """At most `limit` acquisitions in any `window` seconds (plus a small margin)."""

    def __init__(
        self, limit: int, window: float, clock: Clock, sleep: Sleep, margin: float = 0.05
    ) -> None:
        if limit < 1:
            raise ValueError(f"rate limit must be at least 1 per window, not {limit}")
        self.limit = limit
        self.window = window
        self.margin = margin  # covers network latency jitter between our send and HubSpot's count
        self.clock = clock
        self.sleep = sleep
        self.sent: deque[float] = deque()
        self.paused_until = 0.0

    def wait_time(self, now: float) -> float:
        """Seconds to wait before a call may be sent at `now` (0 when it may go now)."""
        horizon = now - self.window - self.margin
        while self.sent and self.sent[0] <= horizon:
            self.sent.popleft()
        wait = max(0.0, self.paused_until - now)
        if len(self.sent) >= self.limit:
            wait = max(wait, self.sent[len(self.sent) - self.limit] - horizon)
        return wait

    def record(self, now: float) -> None:
        self.sent.append(now)

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, self.clock() + seconds)


class Limiter:
    """The general (per 10 s) and search (per 1 s) budgets of one HubSpot account."""

    def __init__(
        self,
        requests_per_10s: int = 100,
        searches_per_second: int = 4,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        reserve: int = 2,
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self.reserve = reserve
        self.windows = {
            GENERAL: SlidingWindow(requests_per_10s, 10.0, clock, sleep),
            SEARCH: SlidingWindow(searches_per_second, 1.0, clock, sleep),
        }
        self.waited = 0.0  # total seconds spent waiting (for logs and tests)
        self._lock = threading.Lock()

    def acquire(self, kind: str = GENERAL) -> None:
        """Block until a call of `kind` may be sent, then count it as sent."""
        names = (GENERAL, SEARCH) if kind == SEARCH else (GENERAL,)
        with self._lock:
            while True:
                now = self.clock()
                wait = max(self.windows[n].wait_time(now) for n in names)
                if wait <= 0:
                    for n in names:
                        self.windows[n].record(now)
                    return
                self.waited += wait
                self.sleep(wait)

    def observe(self, headers: Mapping[str, Any] | None, kind: str = GENERAL) -> None:
        """Slow down when HubSpot's own counters say the shared budget is nearly spent."""
        if not headers:
            return
        h = {str(k).lower(): v for k, v in headers.items()}
        self._slow_down(
            GENERAL,
            _int(h.get("x-hubspot-ratelimit-remaining")),
            _int(h.get("x-hubspot-ratelimit-max")),
            (_int(h.get("x-hubspot-ratelimit-interval-milliseconds")) or 10_000) / 1000.0,
        )
        self._slow_down(
            SEARCH if kind == SEARCH else GENERAL,
            _int(h.get("x-hubspot-ratelimit-secondly-remaining")),
            _int(h.get("x-hubspot-ratelimit-secondly")),
            1.0,
        )

    def _slow_down(
        self, name: str, remaining: int | None, limit: int | None, interval: float
    ) -> None:
        if remaining is None or remaining >= self.reserve:
            return
        # Slots free up at about limit/interval per second; wait for the missing ones.
        per_slot = interval / max(limit or self.windows[name].limit, 1)
        missing = self.reserve - remaining
        with self._lock:
            self.windows[name].pause(min(interval, missing * per_slot))

    def rate_limited(self, retry_after: float | None, kind: str = GENERAL) -> None:
        """A 429 arrived: hold every call of `kind` for its Retry-After (or a second)."""
        with self._lock:
            self.windows[SEARCH if kind == SEARCH else GENERAL].pause(
                retry_after if retry_after is not None else 1.0
            )


def _int(v: Any) -> int | None:
    try:
        return int(str(v).strip())
    except (TypeError, ValueError):
        return None
