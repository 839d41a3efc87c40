"""Session-wide test hygiene.

- Loopback traffic never goes through a proxy. REQUESTS_CA_BUNDLE stays set on
  purpose (this machine exports it, and so may a user's): the Salesforce
  connector must verify against its configured CA anyway.
- `CRMSYNC_TEST_SHIFT_DAYS=N` moves the wall clock N days ahead for this
  process and every subprocess a test starts (tests/timeshift/sitecustomize.py),
  to prove no test depends on today's date.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
TIMESHIFT_DIR = Path(__file__).parent / "timeshift"


def _start_clock_shift() -> None:
    if not os.environ.get("CRMSYNC_TEST_SHIFT_DAYS", "").strip():
        return
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(TIMESHIFT_DIR) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(TIMESHIFT_DIR), *paths])
    already = sys.modules.get("sitecustomize")
    if getattr(already, "_TRAVELLER", None) is not None:
        return  # this process was started with the hook on PYTHONPATH: already travelling
    spec = importlib.util.spec_from_file_location(
        "crmsync_test_timeshift", TIMESHIFT_DIR / "sitecustomize.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


_start_clock_shift()


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
