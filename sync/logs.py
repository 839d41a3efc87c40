"""Logging, configured once: readable lines on a terminal, JSON lines for the daemon.

Logs go to stderr, results to stdout. Records carry a short stable message plus
fields passed as `extra=` (crm, object, records, run_id, ...). Every secret the
config loader loads is registered here and masked in every line, whatever
formatter prints it; log CRM ids, never emails, names or raw records.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from typing import Any

_secrets: set[str] = set()
_lock = threading.Lock()
MASK = "***"

# Attributes every LogRecord has; anything else came in through `extra=`.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def register_secret(value: str) -> None:
    """Mask `value` (and its non-trivial lines) in every log line from now on."""
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for s in secrets:
        if s in text:
            text = text.replace(s, MASK)
    return text


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%d %H:%M:%S")
        extra = " ".join(f"{k}={_short(v)}" for k, v in fields_of(record).items())
        line = f"{ts} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if extra:
            line += f"  {extra}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(fields_of(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(out, default=str, ensure_ascii=False))


def _short(v: Any) -> str:
    s = v if isinstance(v, str) else json.dumps(v, default=str)
    return s if len(s) <= 200 else s[:197] + "..."


def setup(fmt: str = "text", level: str = "INFO", stream: Any = None) -> None:
    """Configure the root logger (idempotent: replaces crmsync's own handler)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_crmsync", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler._crmsync = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Third-party chatter that can echo URLs with tokens or bodies with personal data.
    for noisy in ("urllib3", "requests", "werkzeug", "apscheduler", "simple_salesforce", "hubspot"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
