"""The one retry policy both connectors use (tenacity), so a flaky CRM is handled alike.

What is retried: `CrmUnavailable` (5xx, connection reset, timeout, truncated
body) and its subclass `RateLimited`. Nothing else: an auth failure, a quota
stop or a rejected record will not get better by asking again.

How long to wait: a `RateLimited` (or `CrmUnavailable`) carrying `retry_after`
waits exactly that long (HubSpot's Retry-After, RELIABILITY R1); otherwise
exponential backoff with full jitter, capped (R2, R7).

When to give up (R8): after `max_attempts` attempts, or when the next wait
would take the total time spent on this call past `max_elapsed_seconds`,
whichever comes first; the last error is re-raised, its line saying how many
attempts over how long ("gave up after 6 attempts over 24 s"), so the caller
sees a named `CrmError`. One budget per operation: nothing inside `fn` may
retry on its own (a login inside a query is part of the query's attempt). Elapsed time is the larger of the real time since the
first attempt and the sum of the waits, so an injected fake `sleep` (tests)
still hits the time cap.

Every retry is logged at WARNING with the operation, the attempt, the wait and
the CRM's status/code: ids only, never a payload.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from crmsync.connectors.errors import CrmUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], None]


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds for retrying one call. Defaults suit an interactive or scheduled run."""

    max_attempts: int = 6
    max_elapsed_seconds: float = 120.0
    initial_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0
    max_retry_after_seconds: float = 120.0  # a Retry-After longer than this is not waited for


DEFAULT_POLICY = RetryPolicy()


class _WaitRetryAfterOrBackoff(wait_base):
    """Retry-After when the error carries one, else exponential backoff with full jitter."""

    def __init__(self, policy: RetryPolicy, rng: random.Random) -> None:
        self.policy = policy
        self.rng = rng

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None and retry_after >= 0:
            return float(retry_after)
        return backoff_seconds(self.policy, retry_state.attempt_number, self.rng)


def backoff_seconds(policy: RetryPolicy, failures: int, rng: random.Random) -> float:
    """The wait after the `failures`-th failure: exponential, capped, with jitter."""
    cap = min(policy.max_backoff_seconds, policy.initial_backoff_seconds * 2 ** (failures - 1))
    # Full jitter (AWS architecture blog): uniform in [cap/2, cap] keeps a floor.
    return cap / 2 + rng.uniform(0, cap / 2)


def retry_waits(
    policy: RetryPolicy = DEFAULT_POLICY, rng: random.Random | None = None
) -> Iterator[float]:
    """The waits before each retry of a step that is not one call, under the same policy.

    sync/drain.py retries the rows a CRM refused for a moment (UNABLE_TO_LOCK_ROW)
    this way: at most `max_attempts - 1` retries, no wait longer than the
    policy's backoff, all of them within `max_elapsed_seconds`.
    """
    rng = rng or random.Random()
    spent = 0.0
    for failures in range(1, policy.max_attempts):
        wait = backoff_seconds(policy, failures, rng)
        if spent + wait > policy.max_elapsed_seconds:
            return
        spent += wait
        yield wait


class _StopWhenBudgetSpent(stop_base):
    """Stop after max_attempts, or when the upcoming wait would pass the time budget."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def __call__(self, retry_state: RetryCallState) -> bool:
        if retry_state.attempt_number >= self.policy.max_attempts:
            return True
        upcoming = retry_state.upcoming_sleep
        if upcoming > self.policy.max_retry_after_seconds:
            return True
        elapsed = max(retry_state.seconds_since_start or 0.0, retry_state.idle_for)
        return elapsed + upcoming > self.policy.max_elapsed_seconds


def call_with_retry(
    fn: Callable[[], T],
    *,
    operation: str,
    policy: RetryPolicy = DEFAULT_POLICY,
    sleep: Sleep = time.sleep,
    log_extra: Mapping[str, Any] | None = None,
    rng: random.Random | None = None,
    before_attempt: Callable[[], None] | None = None,
) -> T:
    """Call `fn()`; retry it on CrmUnavailable within `policy`; re-raise the last error.

    `before_attempt` runs before every attempt (the first included); a connector
    uses it to refuse a call once its API quota share is spent.
    """
    extra = dict(log_extra or {})

    def _log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "retrying %s after %s (attempt %d, waiting %.1fs)",
            operation,
            type(exc).__name__,
            state.attempt_number,
            state.upcoming_sleep,
            extra={
                **extra,
                "operation": operation,
                "attempt": state.attempt_number,
                "wait_seconds": round(state.upcoming_sleep, 3),
                "status": getattr(exc, "status", None),
                "code": getattr(exc, "code", None),
            },
        )

    retrying = Retrying(
        retry=retry_if_exception_type(CrmUnavailable),
        wait=_WaitRetryAfterOrBackoff(policy, rng or random.Random()),
        stop=_StopWhenBudgetSpent(policy),
        sleep=sleep,
        before_sleep=_log_retry,
        reraise=True,
    )

    def attempt() -> T:
        if before_attempt is not None:
            before_attempt()
        return fn()

    try:
        return retrying(attempt)
    except CrmUnavailable as e:
        _note_gave_up(e, retrying.statistics)
        raise


def _note_gave_up(error: CrmUnavailable, stats: Mapping[str, Any]) -> None:
    """Say in the error's one line how long this budget was spent on it."""
    attempts = int(stats.get("attempt_number") or 1)
    if attempts < 2 or "gave up after" in error.message:
        return
    spent = max(float(stats.get("idle_for") or 0.0), float(stats.get("delay_since_first_attempt") or 0.0))
    note = f"gave up after {attempts} attempts over {spent:.0f} s"
    error.args = (f"{error.message.rstrip('.')} ({note})", *error.args[1:])
