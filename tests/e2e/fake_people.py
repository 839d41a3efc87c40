"""A loopback outside people-data provider for tests: canned people, every call recorded.

Registered as the `fake` entry point of the `crmsync.enrichment` group by a dist-info folder
the test puts on sys.path (`register`), exactly as an installed package would be; no network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crmsync.state.model import OutsidePerson

CALLS: list[tuple[str, str]] = []  # (domain, role), in the order asked

PEOPLE: dict[str, list[tuple[str, str, str]]] = {
    "staleedges.com": [("Pat Prospect", "VP Procurement", "pat.prospect@staleedges.com")],
    "warmlead.io": [
        ("Eve \x1b[31mRed\x00 " + "Long" * 200, "Chief " + "Title " * 300, "eve@warmlead.io"),
    ],
}


class FakeProvider:
    def __init__(self, settings: Any) -> None:
        self.settings = settings

    def candidates(self, domain: str, role: str) -> list[OutsidePerson]:
        CALLS.append((domain, role))
        return [
            OutsidePerson(role, name, title, email, "loopback fake")
            for name, title, email in PEOPLE.get(domain, [])
        ]


def register(site: Path) -> Path:
    """Write a dist-info folder declaring the `fake` provider into `site`; return `site`."""
    info = site / "crmsync_fake_people-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: crmsync-fake-people\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        "[crmsync.enrichment]\nfake = tests.e2e.fake_people:FakeProvider\n", encoding="utf-8"
    )
    return site
