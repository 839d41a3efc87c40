"""Send Salesforce traffic to the hosts named in sync.toml, with the CA named there.

simple-salesforce builds every URL as https:// and hard-wires its login hosts
to *.salesforce.com (api-facts §15). A user on a custom domain, behind a
TLS-intercepting proxy, or pointing at the loopback sandbox needs three
ordinary settings instead: `login_url`, `instance_url` and `ca_file`. This
adapter, mounted on the requests.Session handed to simple-salesforce, rewrites
requests for the login hosts to `login_url` and verifies TLS against
`ca_file`. Verification is forced per request because requests lets an
exported REQUESTS_CA_BUNDLE override `session.verify`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

LOGIN_HOSTS = ("login.salesforce.com", "test.salesforce.com")


class RoutingAdapter(HTTPAdapter):
    def __init__(
        self, routes: dict[str, str], ca_file: str | None = None, **kw: Any
    ) -> None:
        """routes: request host (lower case, no port) -> base URL to send it to."""
        self.routes = {h.lower(): urlsplit(u) for h, u in routes.items()}
        self.ca_file = ca_file
        super().__init__(**kw)

    def send(self, request: requests.PreparedRequest, **kw: Any) -> requests.Response:  # type: ignore[override]
        url = urlsplit(request.url or "")
        target = self.routes.get((url.hostname or "").lower())
        if target is not None:
            request.url = urlunsplit(
                (target.scheme, target.netloc, url.path, url.query, url.fragment)
            )
            url = target
        if self.ca_file and url.scheme == "https":
            kw["verify"] = self.ca_file
        return super().send(request, **kw)


def build_session(
    *,
    login_url: str | None,
    instance_url: str | None,
    ca_file: str | None,
    timeout: float = 60.0,
) -> requests.Session:
    """A requests.Session for simple-salesforce that honours the configured hosts and CA."""
    routes: dict[str, str] = {}
    if login_url:
        login = urlsplit(login_url)
        for host in LOGIN_HOSTS:
            if (login.hostname or "").lower() != host:
                routes[host] = login_url
    session = _TimeoutSession(timeout)
    adapter = RoutingAdapter(routes, ca_file=ca_file)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    if instance_url and urlsplit(instance_url).scheme == "http":
        # Plain-HTTP instance (loopback only): simple-salesforce still says https,
        # so route the instance host back to http.
        host = (urlsplit(instance_url).hostname or "").lower()
        adapter.routes[host] = urlsplit(instance_url)
    return session


class _TimeoutSession(requests.Session):
    """requests has no session-wide timeout; a stalled socket must not hang a run."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kw: Any) -> requests.Response:
        # requests' own stubs type these as str | bytes here and str below; it accepts both.
        kw.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, **kw)  # type: ignore[arg-type]
