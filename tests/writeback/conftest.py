from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crmsync.state.db import open_db
from crmsync.sync.drain import drain, verify_landed
from crmsync.sync.plan import Plan, WritebackSettings, enqueue, plan

from .fakes import AS_OF, CRM, FakeConnector, FakeCrm, pull


@pytest.fixture
def db(tmp_path: Path) -> Any:
    database = open_db(tmp_path / "mirror.db")
    yield database
    database.conn.close()


@pytest.fixture
def fake() -> FakeCrm:
    crm = FakeCrm(owners={"005A": "Ana Owner", "005B": "Ben Owner"})
    crm.add_account("001A", "Acme")
    crm.add_contact("003A1", "001A", "Ada", "Lovelace", "CTO")
    crm.add_contact("003A2", "001A", "Alan", "Turing")
    crm.add_contact("003A3", "001A", "Grace", "Hopper", "VP Engineering")
    return crm


@pytest.fixture
def connector(fake: FakeCrm) -> FakeConnector:
    return FakeConnector(fake)


@pytest.fixture
def settings() -> WritebackSettings:
    return WritebackSettings()


class Runner:
    """One run as sync/run.py does it: pull, verify, plan, enqueue, drain."""

    def __init__(
        self, db: Any, fake: FakeCrm, connector: FakeConnector, settings: WritebackSettings
    ) -> None:
        self.db, self.fake, self.connector, self.settings = db, fake, connector, settings
        self.drifts: list[Any] = []
        self.waits: list[float] = []  # the drain's backoff waits, recorded instead of slept

    def plan(self, results: dict[str, Any], *, pull_first: bool = True) -> Plan:
        if pull_first:
            pull(self.db, self.fake)
        self.drifts = verify_landed(self.db, CRM)
        return plan(self.db, CRM, results, self.settings, as_of=AS_OF)

    def run(self, results: dict[str, Any], **kw: Any) -> tuple[Plan, Any]:
        p = self.plan(results)
        enqueue(self.db, p)
        report = drain(
            self.db,
            self.connector,
            CRM,
            batch_size=200,
            max_attempts=self.settings.max_attempts,
            **{"sleep": self.waits.append, **kw},
        )
        return p, report


@pytest.fixture
def runner(db: Any, fake: FakeCrm, connector: FakeConnector, settings: WritebackSettings) -> Runner:
    return Runner(db, fake, connector, settings)
