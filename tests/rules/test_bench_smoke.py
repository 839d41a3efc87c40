"""bench/rules_speed.py keeps working (a tiny run; the real numbers come from `make bench`)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path


def test_rules_speed_runs_on_a_tiny_org(capsys):
    path = Path(__file__).resolve().parents[2] / "bench" / "rules_speed.py"
    spec = importlib.util.spec_from_file_location("rules_speed", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--accounts", "40", "--contacts", "5", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["contacts"] == 200
    assert sum(report["contact_status"].values()) == 200
    assert set(report["flags"]) <= {
        "bouncing_contact",
        "departed_champion",
        "stale_contact",
        "single_threaded_account",
    }
