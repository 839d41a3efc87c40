"""Session-wide test hygiene: loopback traffic never goes through a proxy.

REQUESTS_CA_BUNDLE stays set on purpose (this machine exports it, and so may a
user's): the Salesforce connector must verify against its configured CA anyway.
"""

from __future__ import annotations

import pytest

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
