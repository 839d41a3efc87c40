"""Requests an incremental pull makes over an unchanged org (issue 14), per CRM and route.

    .venv/bin/python bench/incremental_requests.py [--accounts 12] [--seed 3] [--runs 2]

Both sandboxes run in this process (as the e2e tests run them: seed 3, 12
accounts by default). crmsync runs through its CLI: `crmsync sync --full
--pull-only --crm CRM`, then `--runs` times `crmsync sync --pull-only --crm CRM`
(an incremental; nothing changed in between). Each incremental's requests are
the sandbox's own request log (`/_sandbox/requests`), reset before the run:
what the server saw, login included.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def kind(crm: str, route: str) -> str:
    """A request's kind, for the summary: data, or what else it is (from the sandbox's
    route names, e.g. "GET sobject_describe", "GET account_usage")."""
    _, _, path = route.partition(" ")
    if crm == "salesforce":
        names = (("login", "login"), ("token", "login"), ("describe", "describe"),
                 ("limits", "limits"))  # fmt: skip
    else:
        names = (("properties", "properties"), ("owners", "owners"), ("usage", "usage"),
                 ("details", "account"))  # fmt: skip
    return next((name for needle, name in names if needle in path), "data")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--accounts", type=int, default=12)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--runs", type=int, default=2, help="incrementals after the full pull")
    args = p.parse_args()

    from click.testing import CliRunner

    from crmsync.sandbox.generate import generate
    from crmsync.sandbox.hubspot import HubSpotSandbox
    from crmsync.sandbox.salesforce import SalesforceSandbox
    from crmsync.sync.cli import cli

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    data = generate(seed=args.seed, accounts=args.accounts)
    with tempfile.TemporaryDirectory() as tmp, SalesforceSandbox(dataset=data) as sf, \
            HubSpotSandbox(dataset=data) as hs:  # fmt: skip
        config = Path(tmp) / "sync.toml"
        sf.write_config(config)
        hs.write_config(config)
        config.write_text('[mirror]\npath = "crmsync.db"\n\n' + config.read_text())

        def run(*argv: str) -> None:
            result = CliRunner().invoke(cli, [*argv, "--config", str(config)])
            if result.exit_code != 0:
                raise SystemExit(f"crmsync {' '.join(argv)}: exit {result.exit_code}\n{result.output}")

        sandboxes: dict[str, Any] = {"salesforce": sf, "hubspot": hs}
        for crm, sb in sandboxes.items():
            run("sync", "--full", "--pull-only", "--crm", crm)
            for n in range(1, args.runs + 1):
                sb.requests.reset()
                run("sync", "--pull-only", "--crm", crm)
                routes = sb.requests.counts()["by_route"]
                kinds: Counter[str] = Counter()
                for route, count in routes.items():
                    kinds[kind(crm, route)] += count
                total = sum(routes.values())
                print(f"{crm} incremental {n}: {total} requests "
                      f"({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))})")  # fmt: skip
                for route, count in sorted(routes.items()):
                    print(f"    {count:3d}  {route}")


if __name__ == "__main__":
    main()
