"""HubSpot auth: OAuth refresh (A1), rotation (A3), revocation (A4), private app 401.

Unit tests drive OAuthTokens with a fake token endpoint; the e2e ones go through the
emulator's /oauth/v1/token with the real client.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from test_hubspot_support import FakeTime, dataset, pull_all, serve_dates_from

from crmsync.connectors.base import Secret
from crmsync.connectors.errors import AuthFailed, CrmUnavailable
from crmsync.connectors.hubspot import HubSpotConnector, Settings
from crmsync.connectors.hubspot.auth import OAuthTokens, PrivateAppToken
from crmsync.connectors.retry import RetryPolicy
from crmsync.sandbox.hubspot import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, HubSpotSandbox
from crmsync.state.model import ObjectType


class FakeEndpoint:
    def __init__(self, *answers):
        self.answers = list(answers)
        self.forms = []

    def __call__(self, form):
        self.forms.append(dict(form))
        a = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(a, Exception):
            raise a
        return a


def tokens(endpoint, clock, path=None, refresh="r0"):
    return OAuthTokens(
        client_id="id",
        client_secret=Secret("s"),
        refresh_token=Secret(refresh),
        refresh_token_file=path,
        request=endpoint,
        clock=clock.time,
    )


def test_access_token_is_refreshed_before_it_expires():
    clock = FakeTime(0)
    ep = FakeEndpoint(
        {"access_token": "a1", "expires_in": 1800}, {"access_token": "a2", "expires_in": 1800}
    )
    t = tokens(ep, clock)
    assert t.token() == "a1" and t.token() == "a1"
    clock.sleep(1800 - 60)  # inside the refresh margin
    assert t.token() == "a2"
    assert len(ep.forms) == 2 and ep.forms[0]["grant_type"] == "refresh_token"


def test_a1_concurrent_401s_share_one_refresh():
    clock = FakeTime(0)
    ep = FakeEndpoint(
        {"access_token": "a1", "expires_in": 1800}, {"access_token": "a2", "expires_in": 1800}
    )
    t = tokens(ep, clock)
    stale = t.token()
    got = []
    threads = [
        threading.Thread(target=lambda: got.append(t.on_unauthorized(stale))) for _ in range(8)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert got == ["a2"] * 8
    assert len(ep.forms) == 2  # the first token and exactly one refresh


def test_a3_rotated_refresh_token_is_saved_atomically_before_use(tmp_path):
    path = tmp_path / "hubspot-refresh.txt"
    path.write_text("r0\n")
    clock = FakeTime(0)
    ep = FakeEndpoint(
        {"access_token": "a1", "refresh_token": "r1", "expires_in": 1800},
        {"access_token": "a2", "refresh_token": "r2", "expires_in": 1800},
    )
    t = tokens(ep, clock, path)
    t.token()
    assert path.read_text().strip() == "r1"
    t.on_unauthorized("a1")
    assert ep.forms[1]["refresh_token"] == "r1"  # the rotated token is the one used next
    assert path.read_text().strip() == "r2"
    assert [p.name for p in tmp_path.iterdir()] == ["hubspot-refresh.txt"]  # no temp files left
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a4_invalid_grant_is_auth_failed_at_once():
    ep = FakeEndpoint(AuthFailed("invalid_grant", status=400, code="invalid_grant"))
    t = tokens(ep, FakeTime(0))
    with pytest.raises(AuthFailed):
        t.token()
    assert len(ep.forms) == 1


def test_private_app_401_is_auth_failed():
    with pytest.raises(AuthFailed, match="private app token"):
        PrivateAppToken(Secret("x")).on_unauthorized("x")


# ---------------------------------------------------------------- through the emulator


@pytest.fixture
def clock(monkeypatch) -> FakeTime:
    fake = FakeTime()
    serve_dates_from(monkeypatch, fake)
    return fake


def oauth_connector(
    hs: HubSpotSandbox,
    clock: FakeTime,
    refresh_file: Path | None = None,
    refresh: str = REFRESH_TOKEN,
) -> HubSpotConnector:
    settings = Settings(
        host=hs.url,
        auth="oauth",
        client_id=CLIENT_ID,
        client_secret=Secret(CLIENT_SECRET),
        refresh_token=Secret(refresh),
        refresh_token_file=refresh_file,
    )
    return HubSpotConnector(
        settings,
        sleep=clock.sleep,
        clock=clock.time,
        wall_clock=clock.now,
        policy=RetryPolicy(max_attempts=3),
    )


def test_a1_token_expiry_mid_pull_refreshes_exactly_once(clock):
    hs = HubSpotSandbox(
        dataset=dataset(contacts=2_500, companies=3, deals=0),
        clock=clock.time,
        faults=[{"kind": "expire_token", "route": "search", "nth": 3}],
    ).start()
    try:
        c = oauth_connector(hs, clock)
        records, _, _ = pull_all(c, ObjectType.CONTACT, full=True)
        assert len(records) == 2_500
        assert hs.requests.count("oauth_token") == 2  # the first token, then exactly one refresh
        assert c.calls.by_operation["auth"] == 2
        assert c.calls.by_operation["search"] == 13 + 1  # ceil(2500/200) + the refused page again
    finally:
        hs.stop()


def test_a1_proactive_refresh_before_expiry(clock):
    hs = HubSpotSandbox(dataset=dataset(), clock=clock.time).start()
    try:
        c = oauth_connector(hs, clock)
        c.check()
        clock.sleep(1800 - 30)  # the token's last 30 seconds
        c.check()
        assert hs.requests.count("oauth_token") == 2
        assert hs.requests.count("owners") == 2  # no call was refused on the way
    finally:
        hs.stop()


def test_a3_rotation_persisted_and_next_run_uses_it(clock, tmp_path):
    path = tmp_path / "hubspot-refresh-token.txt"
    path.write_text(REFRESH_TOKEN + "\n")
    hs = HubSpotSandbox(
        dataset=dataset(), clock=clock.time, faults=[{"kind": "rotate_refresh_token"}]
    ).start()
    try:
        oauth_connector(hs, clock, path).check()
        rotated = path.read_text().strip()
        assert rotated != REFRESH_TOKEN
        # the next run reads the file (sync/config.py) and authenticates with the new token
        oauth_connector(hs, clock, path, refresh=rotated).check()
        with pytest.raises(AuthFailed):  # the old one was retired by the rotation
            oauth_connector(hs, clock, None, refresh=REFRESH_TOKEN).check()
    finally:
        hs.stop()


def test_a4_revoked_grant_fails_fast_with_a_clear_message(clock):
    hs = HubSpotSandbox(dataset=dataset(), clock=clock.time, faults=[{"kind": "revoke"}]).start()
    try:
        c = oauth_connector(hs, clock)
        with pytest.raises(AuthFailed, match="Re-authorize"):
            c.check()
        assert hs.requests.count("oauth_token") == 1  # no retry loop
        assert hs.requests.count("owners") == 0
    finally:
        hs.stop()


def test_token_endpoint_5xx_is_retried(clock):
    hs = HubSpotSandbox(
        dataset=dataset(),
        clock=clock.time,
        faults=[{"kind": "status", "status": 503, "route": "oauth_token", "nth": 1}],
    ).start()
    try:
        c = oauth_connector(hs, clock)
        c.check()
        assert hs.requests.count("oauth_token") == 2
    finally:
        hs.stop()


def test_wrong_private_app_token_is_auth_failed(clock):
    hs = HubSpotSandbox(dataset=dataset(), clock=clock.time).start()
    try:
        c = HubSpotConnector(Settings(host=hs.url, token=Secret("pat-wrong")), sleep=clock.sleep)
        with pytest.raises(AuthFailed):
            c.check()
        # The run's first request (the daily usage read) is refused, and nothing follows.
        assert hs.requests.counts()["total"] == 1
    finally:
        hs.stop()


def test_secrets_never_appear_in_errors_or_logs(clock, caplog):
    hs = HubSpotSandbox(dataset=dataset(), clock=clock.time, faults=[{"kind": "revoke"}]).start()
    try:
        c = oauth_connector(hs, clock)
        with caplog.at_level("DEBUG"), pytest.raises(AuthFailed) as err:
            c.check()
        text = str(err.value) + caplog.text
        assert CLIENT_SECRET not in text and REFRESH_TOKEN not in text
    finally:
        hs.stop()


def test_unreachable_token_endpoint_is_crm_unavailable(clock):
    hs = HubSpotSandbox().start()
    url = hs.url
    hs.stop()
    settings = Settings(
        host=url,
        auth="oauth",
        client_id=CLIENT_ID,
        client_secret=Secret(CLIENT_SECRET),
        refresh_token=Secret(REFRESH_TOKEN),
    )
    c = HubSpotConnector(settings, sleep=clock.sleep, policy=RetryPolicy(max_attempts=2))
    with pytest.raises(CrmUnavailable):
        c.check()
    assert c.calls.by_operation["auth"] == 2
