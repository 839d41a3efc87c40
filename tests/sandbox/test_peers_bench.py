"""bench/peers.py's pieces that need no peer installed: the host shim (in a child
process, against the loopback HubSpot sandbox), the change set, and the catalogs it
configures. The benchmark itself (it installs the peers from PyPI) is not a test."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _peers():
    spec = importlib.util.spec_from_file_location("peers_bench", BENCH / "peers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["peers_bench"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_shim_sends_the_vendor_origin_to_the_sandbox(hs):
    code = ("import requests; r = requests.get('https://api.hubapi.com/crm/v3/schemas?x=1', "
            "headers={'Authorization': 'Bearer pat-sandbox-0000'}, timeout=10); "
            "print(r.status_code, r.text)")
    env = {**os.environ, "PYTHONPATH": str(BENCH / "peers_shim"),
           "CRMSYNC_BENCH_REWRITE": json.dumps({"https://api.hubapi.com": hs.url})}
    out = subprocess.run([sys.executable, "-c", "import crmsync_bench_shim\n" + code], env=env,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    status, body = out.split(" ", 1)
    assert status == "200" and json.loads(body) == {"results": []}
    assert hs.requests.count("schemas") == 1


def test_change_set_on_the_hubspot_sandbox(hs):
    before = {t: len(hs.records(t)) for t in ("contacts", "deals")}
    done = _peers().change_hubspot(hs)
    assert done["created"] == 25 and done["updated"] > 0 and done["deleted"] > 0
    assert len(hs.records("contacts")) + len(hs.records("deals")) == (
        sum(before.values()) + 25 - done["deleted"])


def test_singer_selection_picks_streams_fields_and_the_replication_key():
    catalog = {"streams": [
        {"tap_stream_id": "Account", "metadata": [
            {"breadcrumb": [], "metadata": {"valid-replication-keys": ["LastModifiedDate",
                                                                       "SystemModstamp"]}},
            {"breadcrumb": ["properties", "Name"], "metadata": {"inclusion": "available"}},
            {"breadcrumb": ["properties", "Blob"], "metadata": {"inclusion": "unsupported"}}]},
        {"tap_stream_id": "Case", "metadata": [{"breadcrumb": [], "metadata": {}}]},
    ]}
    got = _peers().singer_select(catalog, ("Account",))
    assert [s["tap_stream_id"] for s in got["streams"]] == ["Account"]
    md = {tuple(m["breadcrumb"]): m["metadata"] for m in got["streams"][0]["metadata"]}
    assert md[()]["selected"] and md[()]["replication-key"] == "SystemModstamp"
    assert md[("properties", "Name")]["selected"] and "selected" not in md[("properties", "Blob")]
