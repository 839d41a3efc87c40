"""Request and response values the emulator's handlers share, and the error they raise.

Handlers take a `Req` and return a `Resp` (or raise `SfError`), so `/composite`
can run subrequests through the same code without a second HTTP round trip.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from werkzeug.datastructures import Headers, MultiDict

from crmsync.sandbox.common import FaultRule

from .soql import CompiledQuery
from .store import Row

JSON_TYPE = "application/json;charset=UTF-8"
MAX_COLLECTION = 200


class SfError(Exception):
    """An error answered as Salesforce's JSON array."""

    def __init__(self, status: int, code: str, message: str, fields: Iterable[str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields = list(fields) if fields is not None else None

    def resp(self) -> Resp:
        body: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            body["fields"] = self.fields
        return Resp(self.status, [body])


@dataclass
class Req:
    method: str
    path: str
    args: MultiDict[str, str]
    headers: Headers
    body: bytes = b""
    fired: list[FaultRule] = field(default_factory=list)
    user: str | None = None  # the session's user (None: not an API route)
    arrived: datetime | None = None  # the emulator clock when it arrived (long-running limit)

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError as e:
            raise SfError(400, "JSON_PARSER_ERROR", f"Unexpected character: {e}") from None


@dataclass
class Resp:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON_TYPE
    raw: bytes | None = None

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body, separators=(",", ":")).encode("utf-8")


@dataclass
class Locator:
    query: CompiledQuery
    rows: list[Row]
    batch: int
    include_deleted: bool


def bearer(headers: Headers) -> str | None:
    value = headers.get("Authorization") or ""
    if value.lower().startswith(("bearer ", "oauth ")):
        return value.split(None, 1)[1].strip()
    return None


def batch_size(headers: Headers, default: int = 2000) -> int:
    opts = headers.get("Sforce-Query-Options") or ""
    m = re.search(r"batchSize\s*=\s*(\d+)", opts)
    if not m:
        return default
    return max(200, min(2000, int(m.group(1))))


def record_body(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise SfError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
    return {k: v for k, v in data.items() if k != "attributes"}


def check_size(items: list[Any]) -> None:
    if len(items) > MAX_COLLECTION:
        raise SfError(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call")


def query_text(req: Req) -> str:
    return req.args.get("q") or ""
