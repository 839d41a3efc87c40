"""What can go wrong talking to a CRM: the CRM branch of crmsync's one error tree.

The classes live in state/errors.py (the leaf every layer imports) and are
named here for the connectors. Connectors translate library exceptions into
these; nothing above connectors/ catches a simple-salesforce or
hubspot-api-client exception. `network_reason` says in two words why a
connection failed ("connection refused", "timed out"), for the one line.
"""

from __future__ import annotations

import socket
import ssl

from crmsync.state.errors import (
    AuthFailed,
    ConfigError,
    CrmError,
    CrmRefused,
    CrmUnavailable,
    FieldsMissing,
    MalformedRecord,
    QuotaExhausted,
    RateLimited,
    RecordRejected,
)

__all__ = [
    "AuthFailed",
    "ConfigError",
    "CrmError",
    "CrmRefused",
    "CrmUnavailable",
    "FieldsMissing",
    "MalformedRecord",
    "QuotaExhausted",
    "RateLimited",
    "RecordRejected",
    "network_reason",
]


def network_reason(exc: BaseException) -> str:
    """Why a request never got an answer, from the exception and what it wraps.

    requests and urllib3 wrap the socket error two or three levels deep
    (ConnectionError -> MaxRetryError -> NewConnectionError -> ConnectionRefusedError),
    and urllib3 2 makes NewConnectionError a subclass of its TimeoutError, so the
    innermost cause decides.
    """
    import requests
    import urllib3

    chain = _chain(exc)
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "connection refused"
    if any(isinstance(e, socket.gaierror | urllib3.exceptions.NameResolutionError) for e in chain):
        return "host name not found"
    if any(isinstance(e, ssl.SSLError) for e in chain):
        return "TLS handshake failed"
    timeouts = (
        TimeoutError,
        urllib3.exceptions.ConnectTimeoutError,
        urllib3.exceptions.ReadTimeoutError,
        requests.exceptions.Timeout,
    )
    if any(
        isinstance(e, timeouts) and not isinstance(e, urllib3.exceptions.NewConnectionError)
        for e in chain
    ):
        return "timed out"
    if any(isinstance(e, ConnectionResetError | ConnectionAbortedError) for e in chain):
        return "connection reset"
    if any(isinstance(e, urllib3.exceptions.ProtocolError) for e in chain):
        return "connection closed before the answer"
    return f"connection failed ({type(exc).__name__})"


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and everything it wraps (args, .reason, __cause__, __context__)."""
    out: list[BaseException] = []
    stack: list[object] = [exc]
    while stack:
        e = stack.pop()
        if not isinstance(e, BaseException) or any(e is o for o in out):
            continue
        out.append(e)
        stack.extend(a for a in e.args if isinstance(a, BaseException))
        stack.extend((getattr(e, "reason", None), e.__context__, e.__cause__))
    return out
