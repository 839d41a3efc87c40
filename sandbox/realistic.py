"""Realistic limits for the sandboxes: what `crmsync sandbox` (and the demo) turn on.

The emulators answer as fast as loopback allows and enforce no limit unless a
test asks, which is what most tests want. A person (or an outside tool)
measuring crmsync against a sandbox wants the opposite: the limits the real
service would impose, so a sync that would take ten minutes against HubSpot
does not finish in ten seconds. Each profile below is one documented account
type; each number says where it comes from, and the ones no vendor documents
are marked ASSUMED (change them with the knobs: `crmsync sandbox --help`).

HubSpot (per private app and account; api-facts §2)
- Rolling limit per 10 s, per private app, and daily limit per account:
  Free/Starter 100 and 250,000; Professional 190 and 625,000; Enterprise 190
  and 1,000,000 (developers.hubspot.com "private apps overview" table: "Free
  and Starter | 100 / private app | 250,000 / account", "Professional | 190 /
  private app | 625,000 / account"; changelog "Increasing our API limits" for
  Enterprise; the changelog says 650,000 for Professional, the harsher 625,000
  is used). Past it: 429 TEN_SECONDLY_ROLLING / DAILY (sandbox/hubspot/limits.py).
- Search: 5 requests per second per account (search guide, quoted in
  activepieces/activepieces#10160; api-facts §2), 429 past it.
- Search index lag: HubSpot documents that search is eventually consistent
  and gives no figure. Integrations re-read a window behind their cursor for it
  (airbytehq/airbyte#69203 "records ... delayed by the HubSpot API", a lookback
  in minutes; estuary/connectors#2210 holds search results back an hour).
  ASSUMED: 5 s, within which search does not see a write (crmsync's own
  lookback is 5 minutes, reliability P6).
- Per-request latency: not documented. ASSUMED 100 ms.

Salesforce (developer.salesforce.com "API Request Limits and Allocations")
- Concurrent long-running requests: "concurrent inbound requests (calls) with
  a duration of 20 seconds or longer": Developer Edition and Trial orgs 5,
  production orgs and sandboxes 25; past it REQUEST_LIMIT_EXCEEDED and "no new
  concurrent requests are allowed until there are fewer than 25 long running
  requests"; "There isn't a limit on the number of concurrent requests shorter
  than 20 seconds." The sandbox refuses a new request (403
  REQUEST_LIMIT_EXCEEDED, "ConcurrentRequests (Concurrent API Requests) Limit
  exceeded.") while that many of its requests have run 20 s or more.
- Daily API requests (a rolling 24 hours): Developer Edition 15,000;
  Enterprise Edition 100,000 plus 1,000 per licence (the base is used).
- Per-request latency: not documented ("the number of results returned can
  vary based on the size and complexity of the records", nothing on time).
  ASSUMED 100 ms.
- Bulk API 2.0 query job duration: not documented. ASSUMED 10 s plus 1 s per
  10,000 rows (the model connectors/salesforce/pull.py `expected_polls` plans
  its polls for); the job answers UploadComplete, InProgress, then JobComplete.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

ASSUMED_LATENCY_MS = 100.0
ASSUMED_INDEX_LAG_SECONDS = 5.0
ASSUMED_BULK_JOB_SECONDS = 10.0
ASSUMED_BULK_JOB_SECONDS_PER_10K_ROWS = 1.0


@dataclass(frozen=True)
class HubSpotProfile:
    plan: str
    per_10s: int
    daily: int
    search_per_second: int = 5
    index_lag_seconds: float = ASSUMED_INDEX_LAG_SECONDS
    latency_ms: float = ASSUMED_LATENCY_MS

    def sandbox_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for HubSpotSandbox."""
        return {
            "rate_limits": {
                "per_10s": self.per_10s,
                "search_per_second": self.search_per_second,
                "daily": self.daily,
            },
            "index_lag_seconds": self.index_lag_seconds,
            "latency_ms": self.latency_ms,
        }

    def describe(self) -> str:
        return (
            f"HubSpot {self.plan}: {self.per_10s} requests per 10 s, {self.daily:,} per day, "
            f"{self.search_per_second} searches per second; search index lag "
            f"{self.index_lag_seconds:g} s and {self.latency_ms:g} ms per request (both assumed)"
        )


@dataclass(frozen=True)
class SalesforceProfile:
    plan: str
    long_running_limit: int
    daily_limit: int
    long_running_seconds: float = 20.0
    latency_ms: float = ASSUMED_LATENCY_MS
    bulk_job_seconds: float = ASSUMED_BULK_JOB_SECONDS
    bulk_job_seconds_per_10k_rows: float = ASSUMED_BULK_JOB_SECONDS_PER_10K_ROWS

    def sandbox_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for SalesforceSandbox."""
        return {
            "daily_limit": self.daily_limit,
            "long_running_limit": self.long_running_limit,
            "long_running_seconds": self.long_running_seconds,
            "latency_ms": self.latency_ms,
            "bulk_job_seconds": self.bulk_job_seconds,
            "bulk_job_seconds_per_10k_rows": self.bulk_job_seconds_per_10k_rows,
        }

    def describe(self) -> str:
        return (
            f"Salesforce {self.plan} org: {self.long_running_limit} concurrent requests running "
            f"{self.long_running_seconds:g} s or longer, {self.daily_limit:,} API requests per "
            f"24 hours; {self.latency_ms:g} ms per request and {self.bulk_job_seconds:g} s + "
            f"{self.bulk_job_seconds_per_10k_rows:g} s per 10,000 rows per Bulk query job (both assumed)"
        )


HUBSPOT_PLANS: dict[str, HubSpotProfile] = {
    "starter": HubSpotProfile("starter", per_10s=100, daily=250_000),
    "professional": HubSpotProfile("professional", per_10s=190, daily=625_000),
    "enterprise": HubSpotProfile("enterprise", per_10s=190, daily=1_000_000),
}
SALESFORCE_PLANS: dict[str, SalesforceProfile] = {
    "production": SalesforceProfile("production", long_running_limit=25, daily_limit=100_000),
    "developer": SalesforceProfile("developer", long_running_limit=5, daily_limit=15_000),
}
DEFAULT_PLAN = {"hubspot": "starter", "salesforce": "production"}


def profile(
    crm: str,
    plan: str | None = None,
    *,
    latency_ms: float | None = None,
    index_lag_seconds: float | None = None,
) -> HubSpotProfile | SalesforceProfile:
    """The realistic profile of `crm` for `plan` (default: the smallest paid account type),
    with the assumed numbers overridden where given. ValueError names the known plans."""
    plans: dict[str, Any] = HUBSPOT_PLANS if crm == "hubspot" else SALESFORCE_PLANS
    name = (plan or DEFAULT_PLAN[crm]).lower()
    if name not in plans:
        raise ValueError(f"{crm} has no plan {plan!r}; known: {', '.join(plans)}")
    chosen = plans[name]
    if latency_ms is not None:
        chosen = replace(chosen, latency_ms=float(latency_ms))
    if index_lag_seconds is not None:
        if crm != "hubspot":
            raise ValueError("a search index lag is a HubSpot setting")
        chosen = replace(chosen, index_lag_seconds=float(index_lag_seconds))
    return chosen
