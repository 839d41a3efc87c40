"""Parts both emulators share: a server thread, request accounting, fault injection.

Fault spec
----------
Faults are seeded and declarative, so a test or a `crmsync sandbox --faults`
run reproduces exactly. A spec is JSON (inline or a file path):

    {"seed": 7, "rules": [
      {"kind": "rate_limit", "route": "search", "nth": 3, "retry_after": 2},
      {"kind": "status", "status": 503, "probability": 0.05},
      {"kind": "expire_session", "every": 500},
      {"kind": "latency", "ms": 20, "route": "query*"},
      {"kind": "reject_write", "match": {"object": "Contact", "id": "003..."},
       "code": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "message": "Title is locked"}
    ]}

or the compact form `kind:key=val,key=val;kind:...` (e.g.
`rate_limit:route=search,nth=3,retry_after=2;status:status=503,probability=0.05`).

Every rule selects requests by `route` (an fnmatch pattern over the emulator's
route names, which `GET /_sandbox/requests` shows) and `method`, then fires by
one of: `nth` (the Nth matching request only), `after` (every matching
request after the first N), `every` (each Nth), `probability` (seeded), or on
every match when none is given; `times` caps how often it fires. Emulators
render a fired rule in their CRM's own wire shape (status codes, bodies,
headers), so the official clients raise what they raise against the real
service. Unknown kinds are kept and passed to the emulator, which ignores
what it does not implement: new fault kinds slot in without changing this file.
"""

from __future__ import annotations

import fnmatch
import json
import os
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

# ------------------------------------------------------------------ faults

_SELECTORS = {"kind", "route", "method", "nth", "after", "every", "probability", "times", "match"}


@dataclass
class FaultRule:
    kind: str
    route: str = "*"
    method: str = "*"
    nth: int | None = None
    after: int | None = None
    every: int | None = None
    probability: float | None = None
    times: int | None = None
    match: Mapping[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    seen: int = 0
    fired: int = 0

    def get(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FaultRule:
        if "kind" not in d:
            raise ValueError(f"fault rule {dict(d)!r} has no 'kind'")
        params = {k: v for k, v in d.items() if k not in _SELECTORS}
        return cls(
            kind=str(d["kind"]),
            route=str(d.get("route", "*")),
            method=str(d.get("method", "*")).upper(),
            nth=_opt_int(d.get("nth")),
            after=_opt_int(d.get("after")),
            every=_opt_int(d.get("every")),
            probability=None if d.get("probability") is None else float(d["probability"]),
            times=_opt_int(d.get("times")),
            match=dict(d.get("match") or {}),
            params=params,
        )


def _opt_int(v: Any) -> int | None:
    return None if v is None else int(v)


def _scalar(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_fault_spec(spec: str | Mapping[str, Any] | list[Any] | None) -> tuple[int, list[FaultRule]]:
    """Parse a spec (dict, list, JSON text, a JSON file path, or the compact form)."""
    if spec is None or spec == "":
        return 0, []
    data: Any = spec
    if isinstance(spec, str):
        text = spec.strip()
        path = Path(text)
        if not text.startswith(("{", "[")) and path.suffix == ".json" and path.exists():
            text = path.read_text(encoding="utf-8")
        if text.startswith(("{", "[")):
            data = json.loads(text)
        else:
            data = []
            for part in filter(None, (p.strip() for p in text.split(";"))):
                kind, _, rest = part.partition(":")
                rule: dict[str, Any] = {"kind": kind.strip()}
                for kv in filter(None, (x.strip() for x in rest.split(","))):
                    k, _, v = kv.partition("=")
                    rule[k.strip()] = _scalar(v.strip())
                data.append(rule)
    if isinstance(data, list):
        data = {"rules": data}
    seed = int(data.get("seed", 0))
    return seed, [FaultRule.from_dict(r) for r in data.get("rules", [])]


class FaultEngine:
    """Decides, per request, which fault rules fire. Thread-safe and seeded."""

    def __init__(self, spec: Any = None) -> None:
        self._lock = threading.Lock()
        self.load(spec)

    def load(self, spec: Any) -> None:
        seed, rules = parse_fault_spec(spec)
        with self._lock:
            self.rules = rules
            self.rng = random.Random(seed)

    def add(self, **rule: Any) -> FaultRule:
        r = FaultRule.from_dict(rule)
        with self._lock:
            self.rules.append(r)
        return r

    def clear(self) -> None:
        with self._lock:
            self.rules = []

    def fire(self, route: str, method: str, kinds: Iterable[str] | None = None) -> list[FaultRule]:
        """The rules that fire for this request (each counts it as seen)."""
        wanted = set(kinds) if kinds is not None else None
        out: list[FaultRule] = []
        with self._lock:
            for r in self.rules:
                if wanted is not None and r.kind not in wanted:
                    continue
                if r.kind == "reject_write" or r.match and r.kind not in ("status", "rate_limit"):
                    continue  # record-matching rules are asked through match_record()
                if not fnmatch.fnmatch(route, r.route):
                    continue
                if r.method != "*" and r.method != method.upper():
                    continue
                r.seen += 1
                if r.times is not None and r.fired >= r.times:
                    continue
                if self._decide(r):
                    r.fired += 1
                    out.append(r)
        return out

    def _decide(self, r: FaultRule) -> bool:
        if r.nth is not None:
            return r.seen == r.nth
        if r.after is not None:
            return r.seen > r.after
        if r.every is not None:
            return r.every > 0 and r.seen % r.every == 0
        if r.probability is not None:
            return self.rng.random() < r.probability
        return True

    def match_record(self, kind: str, record: Mapping[str, Any]) -> FaultRule | None:
        """The first `kind` rule (e.g. reject_write) whose `match` fits `record`."""
        with self._lock:
            for r in self.rules:
                if r.kind != kind:
                    continue
                if r.times is not None and r.fired >= r.times:
                    continue
                if all(_matches(record.get(k), v) for k, v in r.match.items()):
                    r.fired += 1
                    return r
        return None


def _matches(actual: Any, expected: Any) -> bool:
    if isinstance(expected, list):
        return any(_matches(actual, e) for e in expected)
    if isinstance(expected, str) and isinstance(actual, str) and any(c in expected for c in "*?["):
        return fnmatch.fnmatchcase(actual, expected)
    return actual == expected or str(actual) == str(expected)


# ------------------------------------------------------------------ accounting


class RequestLog:
    """Counts requests per method and route (what `GET /_sandbox/requests` answers)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def record(self, method: str, route: str) -> None:
        with self._lock:
            self._counts[(method.upper(), route)] += 1

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def counts(self) -> dict[str, Any]:
        with self._lock:
            items = sorted(self._counts.items())
        by_route: dict[str, int] = Counter()
        by_method: dict[str, int] = Counter()
        for (m, r), n in items:
            by_route[f"{m} {r}"] += n
            by_method[m] += n
        return {
            "total": sum(n for _, n in items),
            "by_method": dict(by_method),
            "by_route": dict(by_route),
        }

    def count(self, route: str = "*", method: str = "*") -> int:
        with self._lock:
            return sum(
                n
                for (m, r), n in self._counts.items()
                if fnmatch.fnmatch(r, route) and (method == "*" or m == method.upper())
            )

    def writes(self) -> int:
        """Requests that could change data (everything but GET and search/read POSTs)."""
        with self._lock:
            return sum(
                n
                for (m, r), n in self._counts.items()
                if m in ("POST", "PATCH", "PUT", "DELETE") and not _is_read_route(r)
            )


def _is_read_route(route: str) -> bool:
    return any(
        w in route
        for w in ("search", "batch_read", "batch/read", "assoc_batch_read", "login", "token", "query", "_sandbox")
    )


# ------------------------------------------------------------------ server


class ServerThread:
    """Serve a WSGI app on loopback in a daemon thread (port 0 picks a free port).

    `date_clock` (epoch seconds) dates the `Date` header every response carries, so a
    sandbox whose clock a test moves answers with its own time, as a CRM server does.
    """

    def __init__(
        self,
        app: Callable[..., Any],
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: Any = None,
        date_clock: Callable[[], float] | None = None,
    ) -> None:
        handler: type[WSGIRequestHandler] | None = None
        if date_clock is not None:
            clock = date_clock

            class _DatedHandler(WSGIRequestHandler):
                def date_time_string(self, timestamp: float | None = None) -> str:
                    return formatdate(clock() if timestamp is None else timestamp, usegmt=True)

            handler = _DatedHandler
        self.server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, ssl_context=ssl_context, request_handler=handler
        )
        self.host = host
        self.port = self.server.server_port
        self.scheme = "https" if ssl_context else "http"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self) -> ServerThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def sleep_ms(ms: float) -> None:
    if ms > 0:
        time.sleep(ms / 1000.0)


# ------------------------------------------------------------------ Salesforce ids

_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def sf_id(prefix: str, n: int, pod: str = "5g") -> str:
    """A real-looking 18-character Salesforce id: key prefix, pod, base-62 counter, checksum.

    `sf_id("003", 1)` -> "0035g00000000001AAA"-like; distinct n give distinct ids.
    """
    body = ""
    x = n
    for _ in range(10):
        body = _B62[x % 62] + body
        x //= 62
    return id18((prefix + pod + body)[:15])


def id18(id15: str) -> str:
    """The 18-character, case-insensitive form of a 15-character Salesforce id."""
    if len(id15) != 15:
        return id15
    suffix = ""
    for block in range(3):
        bits = 0
        for i, ch in enumerate(id15[block * 5 : block * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        suffix += _SUFFIX[bits]
    return id15 + suffix


# ------------------------------------------------------------------ connection faults


def truncated_body(payload: bytes, cut: int, sock: Any) -> Iterator[bytes]:
    """Serve the first `cut` bytes, then hang up (fault `drop_connection`)."""
    yield payload[:cut]
    hang_up(sock)
    raise ConnectionResetError("sandbox fault: drop_connection")


def hang_up(sock: Any) -> None:
    """Close the TCP connection under the request (the client sees a reset or a short body)."""
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def write_standalone_config(path: str | Path, write_table: Callable[[Path], Path]) -> Path:
    """`crmsync sandbox ... --write-config FILE`: the CRM's table, plus a [mirror] table when
    the file has none, so FILE is a working sync.toml at once and the command can be run again
    (or for the other CRM into the same file) without breaking it."""
    path = write_table(Path(path))
    text = path.read_text(encoding="utf-8")
    if not any(line.strip() == "[mirror]" for line in text.splitlines()):
        text = '[mirror]\npath = "crmsync.db"\n\n' + text
        path.write_text(text, encoding="utf-8")
    return path


def write_secret_file(path: Path, data: str | bytes) -> None:
    """Write a (dummy) credential file readable by its owner only, as a real one should
    be: crmsync warns about secret files others can read."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
