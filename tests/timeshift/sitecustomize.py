"""Move this Python process's wall clock ahead by CRMSYNC_TEST_SHIFT_DAYS days.

The suite must not depend on today's date (issue 10): `CRMSYNC_TEST_SHIFT_DAYS=400
make test` runs every test with the clock functions of `datetime` and `time`
400 days in the future, through time-machine, which patches the clock
functions in-process. Monotonic clocks are left alone, so timeouts and waits
behave as usual.

tests/conftest.py travels the pytest process itself and puts this folder on
PYTHONPATH, so every subprocess a test starts (`python -m crmsync ...`, a
standalone sandbox) imports this file at start-up and travels by the same
amount. Without the variable this file does nothing.
"""

from __future__ import annotations

import os


def shift_days() -> int:
    raw = os.environ.get("CRMSYNC_TEST_SHIFT_DAYS", "").strip()
    return int(raw) if raw else 0


def travel() -> object | None:
    """Start travelling (ticking) `shift_days()` ahead; None when there is no shift."""
    days = shift_days()
    if not days:
        return None
    import time
    from datetime import UTC, datetime, timedelta

    import time_machine

    # Read the real clock before travelling: this is the one place that may.
    now = datetime.fromtimestamp(time.time(), UTC)  # wall clock ok
    traveller = time_machine.travel(now + timedelta(days=days), tick=True)
    traveller.start()
    return traveller


_TRAVELLER = travel()
