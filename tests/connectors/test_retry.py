"""The shared retry policy: what is retried, how long it waits, when it gives up."""

from __future__ import annotations

import logging
import random

import pytest

from crmsync.connectors.errors import (
    AuthFailed,
    CrmError,
    CrmUnavailable,
    QuotaExhausted,
    RateLimited,
)
from crmsync.connectors.retry import RetryPolicy, call_with_retry


class Flaky:
    """Fails with the given errors in turn, then returns "ok"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


DEFAULT = RetryPolicy()


def run(fn, policy=DEFAULT, **kw):
    sleeps: list[float] = []
    result = call_with_retry(
        fn, operation="query", policy=policy, sleep=sleeps.append, rng=random.Random(1), **kw
    )
    return result, sleeps


def test_r7_unavailable_is_retried_with_growing_jittered_backoff():
    fn = Flaky(CrmUnavailable("503"), CrmUnavailable("503"), CrmUnavailable("reset"))
    result, sleeps = run(fn, RetryPolicy(initial_backoff_seconds=1, max_backoff_seconds=30))
    assert result == "ok" and fn.calls == 4
    # attempt n waits within [cap/2, cap] with cap = 1, 2, 4 s
    for n, s in enumerate(sleeps):
        cap = 2**n
        assert cap / 2 <= s <= cap


def test_r1_retry_after_is_honoured_exactly():
    fn = Flaky(RateLimited("429", retry_after=2.0))
    result, sleeps = run(fn)
    assert result == "ok" and sleeps == [2.0]


def test_backoff_is_capped():
    fn = Flaky(*[CrmUnavailable("503") for _ in range(6)])
    policy = RetryPolicy(max_attempts=10, max_backoff_seconds=4, max_elapsed_seconds=1000)
    _, sleeps = run(fn, policy)
    assert max(sleeps) <= 4


@pytest.mark.parametrize(
    "error",
    [AuthFailed("bad password"), QuotaExhausted("daily limit"), CrmError("MALFORMED_QUERY")],
)
def test_errors_that_will_not_heal_are_not_retried(error):
    fn = Flaky(error)
    with pytest.raises(type(error)):
        run(fn)
    assert fn.calls == 1


def test_r8_attempts_are_bounded_and_the_last_error_surfaces():
    fn = Flaky(*[CrmUnavailable(f"503 #{i}", status=503) for i in range(20)])
    with pytest.raises(CrmUnavailable, match="503 #2"):
        run(fn, RetryPolicy(max_attempts=3, max_elapsed_seconds=1000))
    assert fn.calls == 3


def test_r8_elapsed_time_is_bounded_even_with_a_fake_sleep():
    policy = RetryPolicy(max_attempts=100, max_elapsed_seconds=20, max_backoff_seconds=8)
    sleeps: list[float] = []
    with pytest.raises(CrmUnavailable):
        call_with_retry(
            Flaky(*[CrmUnavailable("503") for _ in range(100)]),
            operation="query",
            policy=policy,
            sleep=sleeps.append,
        )
    assert sum(sleeps) <= 20
    assert len(sleeps) < 99


def test_retry_after_longer_than_the_budget_gives_up_at_once():
    fn = Flaky(RateLimited("429", retry_after=3600))
    with pytest.raises(RateLimited):
        run(fn)
    assert fn.calls == 1


def test_every_retry_is_logged_with_operation_and_status(caplog):
    caplog.set_level(logging.WARNING, logger="crmsync.connectors.retry")
    fn = Flaky(CrmUnavailable("503", status=503, code="SERVER_UNAVAILABLE"))
    run(fn, log_extra={"object": "Contact"})
    (rec,) = caplog.records
    assert rec.operation == "query" and rec.status == 503 and rec.object == "Contact"
    assert rec.attempt == 1


def test_before_attempt_runs_before_every_attempt_and_can_stop_the_call():
    seen: list[int] = []

    def guard() -> None:
        seen.append(1)
        if len(seen) == 2:
            raise QuotaExhausted("share reached")

    fn = Flaky(CrmUnavailable("503"))
    with pytest.raises(QuotaExhausted):
        run(fn, before_attempt=guard)
    assert fn.calls == 1 and len(seen) == 2
