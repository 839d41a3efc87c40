"""No test reads the wall clock (issue 10): results must not depend on today's date.

Rules run at an explicit `as_of`; daemons, drains and sandboxes take injected
clocks; the sandbox CRMs' server time comes from `tests/clock.py`. A line that
must read the real clock anyway says why with a `# wall clock ok` comment.
"""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).parent
WALL_CLOCK = re.compile(
    r"\b(datetime\.now|datetime\.utcnow|datetime\.today|date\.today|time\.time|time\.time_ns)\s*\("
)


def test_no_test_reads_the_wall_clock() -> None:
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if WALL_CLOCK.search(line) and "# wall clock ok" not in line:
                offenders.append(f"{path.relative_to(TESTS.parent)}:{n}: {line.strip()}")
    assert not offenders, (
        "tests read the wall clock; inject a clock or an as_of, or use tests/clock.py's "
        "crm_now() for the sandboxes' server time:\n" + "\n".join(offenders)
    )


def test_the_guard_sees_a_wall_clock_read() -> None:
    # The samples are built from parts, so this file holds no wall-clock read itself.
    now, stamp = "datetime." + "now", "time." + "time"
    assert WALL_CLOCK.search(f"started = {now}(UTC)")
    assert WALL_CLOCK.search(f"t = {stamp}()")
    assert not WALL_CLOCK.search("t = time.monotonic()")
