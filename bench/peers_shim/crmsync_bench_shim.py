"""Host shim for the peer benchmark (bench/peers.py): nothing else.

Installed into each peer's own venv (bench/.peers/<name>) as this module plus a
.pth line that imports it at interpreter start. It does something only when
CRMSYNC_BENCH_REWRITE is set (a JSON object {"https://host": "https://127.0.0.1:port"}):
then every request that `requests` sends to one of those origins goes to the
sandbox's origin instead (scheme, host and port swapped; path and query kept).
The peer's own code is not changed; it still builds its vendor URLs
(login.salesforce.com, api.hubapi.com) itself.
"""

from __future__ import annotations

import json
import os


def _install() -> None:
    spec = os.environ.get("CRMSYNC_BENCH_REWRITE")
    if not spec:
        return
    table = {k.rstrip("/"): v.rstrip("/") for k, v in json.loads(spec).items()}
    import requests.adapters

    send = requests.adapters.HTTPAdapter.send

    def rewritten(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        url = request.url or ""
        for origin, target in table.items():
            if url == origin or url.startswith(origin + "/") or url.startswith(origin + "?"):
                request.url = target + url[len(origin):]
                if "Host" in request.headers:
                    del request.headers["Host"]
                break
        return send(self, request, *args, **kwargs)

    requests.adapters.HTTPAdapter.send = rewritten


_install()
