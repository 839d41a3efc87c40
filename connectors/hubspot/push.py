"""Write-back to HubSpot: batch updates and task creates, one WriteResult per item.

    update_account  -> POST /crm/v3/objects/companies/batch/update   (<= 100 inputs)
    update_contact  -> POST /crm/v3/objects/contacts/batch/update
    create_task     -> POST /crm/v3/objects/tasks/batch/create, associations inline
                       (task->contact 204, task->company 192), crmsync_key set
    update_task,
    complete_task   -> POST /crm/v3/objects/tasks/batch/update (one call for both kinds)

HubSpot answers a batch in one of three ways:
- 200/201: every input landed;
- 207: some inputs failed; `errors[]` name them by `context.ids` (updates) or
  carry the input's `objectWriteTraceId` (W2) -> those items are rejected with
  HubSpot's category and message, the rest are ok;
- a whole-batch 400/409 (validation error, duplicate; no per-input detail, W3)
  -> the batch is bisected and each half re-sent until the bad inputs stand
  alone, so every good row lands. This costs about 2·k·log2(n) extra calls for
  k bad rows in a batch of n (1 bad row in 100: 14 extra calls).

Creates are matched back to items through the `crmsync_key` HubSpot echoes
in each result (batch create does not promise result order).
`find_tasks_by_keys` lets the writer check for tasks a previous attempt may
already have created before creating again (W4).

Transport failures (CrmUnavailable after retries, AuthFailed, QuotaExhausted)
raise: the writer leaves the batch in the outbox. A task create whose answer is
lost (connection dropped or timed out) is not retried: HubSpot may have applied
it and tasks have no unique key, so it raises at once and the drain looks the
keys up in a later run, once search has caught up (W4, P6). One batch can take several
requests (one per route, 100 inputs each, more when bisecting): a stop between
them raises with the answers of the requests before it on `error.answered`, so
the drain records what landed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crmsync.connectors.errors import AuthFailed, CrmError, CrmUnavailable, QuotaExhausted
from crmsync.state.batch import batched
from crmsync.state.model import OutboxItem, WriteKind, WriteResult

from . import fields as f
from .client import HubSpotClient

log = logging.getLogger(__name__)

BATCH = 100
IN_VALUES = 100  # values per IN filter in find_tasks_by_keys

_BATCH_PARAM = {
    "update": "batch_input_simple_public_object_batch_input",
    "create": "batch_input_simple_public_object_batch_input_for_create",
}


@dataclass(frozen=True)
class _Route:
    operation: str  # ApiCalls operation
    api: str  # dotted API path
    method: str  # "update" | "create"
    noun: str  # for messages


ROUTES = {
    WriteKind.UPDATE_ACCOUNT: _Route(
        "batch_update", "crm.companies.batch_api", "update", "company"
    ),
    WriteKind.UPDATE_CONTACT: _Route("batch_update", "crm.contacts.batch_api", "update", "contact"),
    WriteKind.CREATE_TASK: _Route("batch_create", "crm.objects.tasks.batch_api", "create", "task"),
    WriteKind.UPDATE_TASK: _Route("batch_update", "crm.objects.tasks.batch_api", "update", "task"),
    WriteKind.COMPLETE_TASK: _Route(
        "batch_update", "crm.objects.tasks.batch_api", "update", "task"
    ),
}


@dataclass(frozen=True)
class _Input:
    item: OutboxItem
    body: dict[str, Any]
    match: str  # id (updates) or crmsync_key (creates)


class Pusher:
    def __init__(self, client: HubSpotClient, schema: Callable[[str], Mapping[str, Any]]) -> None:
        self.client = client
        self.schema = schema  # property definitions by object type (read once, pull.py)

    # ------------------------------------------------------------ write

    def write(self, batch: Sequence[OutboxItem]) -> list[WriteResult]:
        results: dict[int, WriteResult] = {}
        groups: dict[_Route, list[_Input]] = {}
        for item in batch:
            route = ROUTES.get(WriteKind(item.kind))
            if route is None:
                results[item.id] = _reject(
                    item, "UNSUPPORTED", f"unknown write kind {item.kind}", sent=False
                )
                continue
            try:
                inp = _input(item, route)
            except (KeyError, ValueError, TypeError) as e:
                results[item.id] = _reject(
                    item, "INVALID_PAYLOAD", f"cannot map payload: {e}", sent=False
                )
                continue
            groups.setdefault(route, []).append(inp)
        try:
            for route, inputs in groups.items():
                for chunk in _chunks_unique(inputs, BATCH):
                    self._send(route, chunk, results)
        except (CrmUnavailable, AuthFailed, QuotaExhausted) as exc:
            # A stop between two requests of this batch (the daily 429, crmsync's share, an
            # outage): what HubSpot answered before it is kept for the drain to record.
            exc.answered = [results[i.id] for i in batch if i.id in results]
            raise
        return [results[item.id] for item in batch]

    def _send(
        self, route: _Route, inputs: Sequence[_Input], results: dict[int, WriteResult]
    ) -> None:
        """One batch call, its answers into `results` as they come; a whole-batch rejection
        is bisected to isolate the bad inputs (W3)."""
        try:
            # A create whose answer is lost is not sent again blind: HubSpot may have applied
            # it, and its search (the only look-up by key) lags writes (P6). The stop leaves
            # the rows in flight; the drain looks their keys up once the lag has passed (W4).
            send = self.client.call_create if route.method == "create" else self.client.call
            resp = send(
                route.operation,
                route.api,
                route.method,
                **{_BATCH_PARAM[route.method]: {"inputs": [i.body for i in inputs]}},
            )
        except (CrmUnavailable, AuthFailed, QuotaExhausted):
            raise
        except CrmError as e:
            if e.status not in (400, 409, 422):
                raise
            unknown = _unknown_properties(e.detail)
            doomed = [i for i in inputs if unknown & set(i.body.get("properties") or {})]
            if doomed:
                # A missing property fails every row that writes it: no point bisecting.
                names = ", ".join(sorted(unknown))
                for i in doomed:
                    results[i.item.id] = _reject(
                        i.item,
                        "PROPERTY_DOESNT_EXIST",
                        f"HubSpot {route.noun} has no property {names}. Run `crmsync setup "
                        "--crm hubspot` to create it.",
                    )
                rest = [i for i in inputs if i not in doomed]
                if rest:
                    self._send(route, rest, results)
                return
            if len(inputs) == 1:
                item = inputs[0].item
                log.warning(
                    "HubSpot rejected %s %s: %s",
                    route.noun,
                    item.target_id or item.key,
                    e.code,
                    extra={"crm": "hubspot", "item": item.id, "code": e.code},
                )
                code, detail = _validation_detail(e.detail)
                results[item.id] = _reject(
                    item, code or e.code or str(e.status), detail or e.detail or str(e)
                )
                return
            mid = len(inputs) // 2
            log.warning(
                "HubSpot rejected a batch of %d %s writes (%s); splitting to isolate the bad rows",
                len(inputs),
                route.noun,
                e.code,
                extra={"crm": "hubspot", "size": len(inputs), "code": e.code},
            )
            self._send(route, inputs[:mid], results)
            self._send(route, inputs[mid:], results)
            return
        for r in _results(route, inputs, resp.status, resp.body or {}):
            results[r.item_id] = r

    # ------------------------------------------------------------ W4

    def find_tasks_by_keys(self, keys: Iterable[str]) -> dict[str, str]:
        """crmsync_key -> HubSpot task id for the keys that already have a task."""
        found: dict[str, str] = {}
        wanted = sorted(set(keys))
        if wanted and f.TASK_KEY not in self.schema(f.TASKS):
            return found  # before `crmsync setup` no task can carry a key
        for values in batched(wanted, IN_VALUES):
            after_id: str | None = None
            while True:
                filters: list[dict[str, Any]] = [
                    {"propertyName": f.TASK_KEY, "operator": "IN", "values": values}
                ]
                if after_id:
                    filters.append(
                        {"propertyName": f.ID_PROPERTY, "operator": "GT", "value": after_id}
                    )
                resp = self.client.call(
                    "search",
                    "crm.objects.tasks.search_api",
                    "do_search",
                    public_object_search_request={
                        "filterGroups": [{"filters": filters}],
                        "sorts": [{"propertyName": f.ID_PROPERTY, "direction": "ASCENDING"}],
                        "properties": [f.TASK_KEY, "hs_task_status"],
                        "limit": 200,
                        "after": "0",
                    },
                )
                data = resp.body or {}
                rows = data.get("results") or []
                for r in rows:
                    key = (r.get("properties") or {}).get(f.TASK_KEY)
                    if key and key not in found:
                        found[key] = str(r.get("id"))
                if not rows or not (data.get("paging") or {}).get("next"):
                    break
                after_id = str(rows[-1].get("id"))
        return found


# ---------------------------------------------------------------- mapping


def _input(item: OutboxItem, route: _Route) -> _Input:
    kind = WriteKind(item.kind)
    payload = dict(item.payload)
    if kind is WriteKind.CREATE_TASK:
        # The task's own key (payload) is what the CRM stores; the outbox key is the
        # write's idempotency key. The planner makes them equal; prefer the payload's.
        key = str(payload.get("key") or item.key)
        props = f.task_properties(payload, key, create=True)
        body: dict[str, Any] = {"properties": props, "associations": f.task_associations(payload)}
        return _Input(item, body, key)
    if not item.target_id:
        raise ValueError(f"{kind} needs the CRM id of the record (target_id)")
    if kind is WriteKind.UPDATE_ACCOUNT:
        props = f.account_properties(payload)
    elif kind is WriteKind.UPDATE_CONTACT:
        props = f.contact_properties(payload)
    elif kind is WriteKind.UPDATE_TASK:
        props = f.task_properties(payload, create=False)
    else:
        props = f.completed_properties(payload)
    body = {"id": str(item.target_id), "properties": props, "objectWriteTraceId": str(item.id)}
    return _Input(item, body, str(item.target_id))


def _chunks_unique(inputs: Sequence[_Input], size: int) -> Iterable[list[_Input]]:
    """Chunks of `size`; an id/key repeated inside a chunk starts a new chunk (HubSpot
    rejects a batch naming the same record twice)."""
    chunk: list[_Input] = []
    seen: set[str] = set()
    for inp in inputs:
        if len(chunk) >= size or inp.match in seen:
            yield chunk
            chunk, seen = [], set()
        chunk.append(inp)
        seen.add(inp.match)
    if chunk:
        yield chunk


def _results(
    route: _Route, inputs: Sequence[_Input], status: int, body: Mapping[str, Any]
) -> list[WriteResult]:
    by_match: dict[str, str] = {}  # match -> crm id of the written record
    for r in body.get("results") or []:
        rid = str(r.get("id"))
        if route.method == "create":
            key = (r.get("properties") or {}).get(f.TASK_KEY)
            if key:
                by_match[str(key)] = rid
        else:
            by_match[rid] = rid
    failed: dict[str, tuple[str, str]] = {}
    first_error: tuple[str, str] | None = None
    for err in body.get("errors") or []:
        inner = (err.get("errors") or [{}])[0] or {}
        code = str(inner.get("code") or err.get("category") or err.get("subCategory") or "ERROR")
        msg = str(inner.get("message") or err.get("message") or "")
        first_error = first_error or (code, msg)
        ctx = err.get("context") or {}
        names = list(ctx.get("ids") or []) + list(ctx.get("id") or [])
        trace = ctx.get("objectWriteTraceId") or err.get("objectWriteTraceId")
        for t in trace if isinstance(trace, list) else [trace] if trace else []:
            names.extend(i.match for i in inputs if str(i.item.id) == str(t))
        if err.get("id"):
            names.append(str(err["id"]))
        for n in names:
            failed[str(n)] = (code, msg)
    out = []
    for inp in inputs:
        if inp.match in failed:
            code, msg = failed[inp.match]
            out.append(_reject(inp.item, code, msg))
        elif inp.match in by_match:
            out.append(WriteResult(inp.item.id, True, crm_id=by_match[inp.match]))
        elif status == 207 or (route.method == "create" and by_match):
            code, msg = first_error or ("UNKNOWN", "HubSpot did not report this input")
            out.append(_reject(inp.item, code, msg))
        else:
            out.append(WriteResult(inp.item.id, True, crm_id=inp.item.target_id))
    return out


def _property_errors(message: str | None) -> list[dict[str, Any]]:
    """HubSpot's whole-batch 400 embeds the per-property errors as JSON in its message:
    'Property values were not valid: [{"isValid":false,"message":"...","error":"INVALID_EMAIL",
    "name":"email"}]'."""
    if not message or "[" not in message:
        return []
    try:
        items = json.loads(message[message.index("[") :])
    except ValueError:
        return []
    return [x for x in items if isinstance(x, dict)] if isinstance(items, list) else []


def _unknown_properties(message: str | None) -> set[str]:
    return {
        str(x["name"])
        for x in _property_errors(message)
        if x.get("error") == "PROPERTY_DOESNT_EXIST" and x.get("name")
    }


def _validation_detail(message: str | None) -> tuple[str | None, str | None]:
    """(error code, "property: message") of the first property error in a 400's message."""
    errors = _property_errors(message)
    first = errors[0] if errors else None
    if first is None:
        return None, None
    name, text = first.get("name"), first.get("message")
    return first.get("error"), (f"{name}: {text}" if name and text else text)


def _reject(
    item: OutboxItem, code: str, detail: str, retryable: bool = False, *, sent: bool = True
) -> WriteResult:
    return WriteResult(
        item.id,
        False,
        crm_id=item.target_id,
        code=code,
        detail=detail,
        retryable=retryable,
        sent=sent,
    )
