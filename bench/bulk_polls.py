"""Bulk API 2.0 polls per job duration: what crmsync's poll schedule costs in calls and waiting.

    .venv/bin/python bench/bulk_polls.py [--seconds 0,1,2,5,10,20,30,60,120,300,600]

A Bulk 2.0 query job answers UploadComplete, runs InProgress, then JobComplete
(api-facts §9); the Salesforce sandbox runs each job `bulk_job_seconds` by its
clock. For each duration this pulls one small object with `bulk = "always"`
through the real connector against the sandbox, with the connector's sleeps
moving the sandbox's clock instead of waiting (so a 10-minute job takes
milliseconds), and reports the polls the sandbox saw and the time the
connector waited past the job's end. The schedule crmsync used before issue 12
(2, 4, 8, 16, 30, 30 ... s) is shown beside it, computed.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OLD_SCHEDULE = (2.0, 4.0, 8.0, 16.0, 30.0)


def polls_on(schedule: tuple[float, ...], seconds: float) -> tuple[int, float]:
    waited, polls = 0.0, 0
    while True:
        waited += schedule[min(polls, len(schedule) - 1)]
        polls += 1
        if waited >= seconds:
            return polls, waited


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def measure(seconds: float) -> tuple[int, float]:
    from crmsync.connectors.base import Secret
    from crmsync.connectors.salesforce import SalesforceConnector, Settings
    from crmsync.sandbox.generate import generate
    from crmsync.sandbox.salesforce import PASSWORD, SECURITY_TOKEN, USERNAME, SalesforceSandbox
    from crmsync.state.model import ObjectType

    clock = Clock()
    data = generate(seed=1, accounts=10, crms=("salesforce",))
    with SalesforceSandbox(data, clock=clock, bulk_job_seconds=seconds) as sb:
        settings = Settings(
            login_url=sb.url, instance_url=sb.url, ca_file=sb.ca_file or "", username=USERNAME,
            password=Secret(PASSWORD), security_token=Secret(SECURITY_TOKEN), bulk="always",
            bulk_max_wait_seconds=max(900.0, seconds * 3),
        )
        waited: list[float] = []

        def sleep(s: float) -> None:
            waited.append(s)
            clock.sleep(s)

        conn = SalesforceConnector(settings, sleep=sleep)
        for _ in conn.pull(ObjectType.ACCOUNT, None, full=True, started_at=clock()):
            pass
        assert conn.stats[ObjectType.ACCOUNT].path == "bulk", conn.stats[ObjectType.ACCOUNT]
        return sb.requests.count(route="bulk2_query_poll"), sum(waited)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", default="0,1,2,5,10,20,30,60,120,300,600",
                   help="job durations to measure, comma-separated")
    args = p.parse_args()
    print("| job s | polls | waited past the end s | old schedule: polls | old: waited past s |")
    print("| --- | --- | --- | --- | --- |")
    for text in args.seconds.split(","):
        seconds = float(text)
        polls, waited = measure(seconds)
        old_polls, old_waited = polls_on(OLD_SCHEDULE, seconds)
        print(f"| {seconds:g} | {polls} | {waited - seconds:.1f} | {old_polls} | {old_waited - seconds:.1f} |")


if __name__ == "__main__":
    main()
