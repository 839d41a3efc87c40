"""The one clock tests may read: the sandbox CRMs' server clock.

Tests never depend on today's date: rules run at an explicit `as_of`, and
daemons and sandboxes take injected clocks. What remains is the CRM's own
clock. The sandboxes stamp records (SystemModstamp, lastmodifieddate, Date
headers) with the real time, as Salesforce and HubSpot do, so a pull's
`started_at` and any "the server's time" a test compares against must come
from the same clock. This is that clock; `tests/test_no_wall_clock.py` keeps
every other wall-clock read out of the tests.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


def crm_now() -> datetime:
    """The sandbox CRMs' server time: the real time (moved by CRMSYNC_TEST_SHIFT_DAYS)."""
    return datetime.fromtimestamp(crm_time(), UTC)


def crm_time() -> float:
    """crm_now() as epoch seconds."""
    return time.time()  # wall clock ok: the sandboxes' server clock
