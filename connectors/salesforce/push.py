"""Write outbox items to Salesforce through sObject Collections, one result per item.

- update_account / update_contact: `PATCH composite/sobjects` (≤ 200 records a
  call, allOrNone false), each record `{"attributes": {"type": ...}, "Id": ...}`
  plus the owned fields of its payload (fields.owned_payload refuses any other
  key: crmsync writes only what it owns).
- create_task / update_task / complete_task: upsert by crmsync's external id,
  `PATCH composite/sobjects/Task/<key field>` (≤ 200), so a retry after a lost
  response updates the task it already created instead of adding a second one
  (RELIABILITY W4). The key is `payload["key"]`, else the item's idempotency
  key; complete_task defaults Status to Completed.
- When the org's key field is not an External ID (describe says
  `externalId: false`: whether every org allows one on an Activity field is
  unconfirmed, api-facts §12; collections upsert accepts nothing else, §11),
  tasks are written by lookup instead, with the same guarantee: the keys of a
  chunk are queried first (`WHERE <key> IN (...)`, 100 a query); a task found
  is updated by its Id (`PATCH composite/sobjects`), as is an update or
  completion that names its task; the rest are created (`POST
  composite/sobjects`) in one attempt only. When that answer is lost
  (CrmUnavailable: the CRM may have created some), the keys are looked up again
  before anything is sent again, and what was found counts as created. A run
  killed between the create and the outbox commit leaves the rows inflight; the
  next run looks their keys up first too (sync/drain.py `_recover`).

Salesforce answers 200 with a SaveResult per record; each becomes a
WriteResult: `ok`, the record id, the first error's statusCode as `code`, all
errors as `detail`, and `retryable` for transient codes (UNABLE_TO_LOCK_ROW
and friends, W1). A request Salesforce refuses as a whole (400) rejects every
item of that call; transport failures (CrmUnavailable after retries,
AuthFailed, QuotaExhausted) raise, and re-sending is safe because both calls
are idempotent. One batch takes up to three requests (accounts, contacts,
tasks): a stop between them (the quota guard) raises with the answers of the
requests before it on `error.answered`, so the drain records what landed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

from simple_salesforce.format import format_soql

from crmsync.connectors.errors import AuthFailed, CrmError, CrmUnavailable, QuotaExhausted
from crmsync.connectors.retry import retry_waits
from crmsync.connectors.salesforce.client import SalesforceClient, Settings
from crmsync.connectors.salesforce.fields import (
    ID,
    ObjectMap,
    Resolved,
    UnmappedField,
    owned_names,
    owned_payload,
    task_key_field,
    task_payload,
)
from crmsync.state.model import CrmRecord, ObjectType, OutboxItem, WriteKind, WriteResult

log = logging.getLogger(__name__)

BATCH = 200
KEYS_PER_QUERY = 100  # keeps the GET query string well under URL limits
RETRYABLE_CODES = frozenset(
    {
        "UNABLE_TO_LOCK_ROW",
        "REQUEST_RUNNING_TOO_LONG",
        "SERVER_UNAVAILABLE",
        "UNKNOWN_EXCEPTION",
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "NO_RESULT",
    }
)
UPDATE_KINDS = {WriteKind.UPDATE_ACCOUNT: "Account", WriteKind.UPDATE_CONTACT: "Contact"}
TASK_KINDS = (WriteKind.CREATE_TASK, WriteKind.UPDATE_TASK, WriteKind.COMPLETE_TASK)


class Writer:
    def __init__(
        self,
        client: SalesforceClient,
        settings: Settings,
        maps: Mapping[ObjectType, ObjectMap],
        resolve: Callable[[ObjectType], Resolved],
    ) -> None:
        self.client = client
        self.settings = settings
        self.maps = maps
        self.resolve = resolve
        self.key_field = task_key_field(settings)
        self.task_owned = {
            k: v for k, v in owned_names(settings, "Task").items() if k != "key"
        }  # the signature

    # -------------------------------------------------------------- write

    def write(self, batch: Sequence[OutboxItem]) -> list[WriteResult]:
        results: dict[int, WriteResult] = {}
        try:
            self._write(batch, results)
        except (CrmUnavailable, AuthFailed, QuotaExhausted) as exc:
            # A stop between two requests of this batch (the quota guard, an outage): what
            # Salesforce answered before it is kept on the error for the drain to record.
            exc.answered = [results[i.id] for i in batch if i.id in results]
            raise
        for item in batch:
            if item.id not in results:
                results[item.id] = WriteResult(
                    item.id,
                    ok=False,
                    code="UNKNOWN_KIND",
                    detail=f"crmsync cannot write {item.kind!r}",
                    sent=False,
                )
        return [results[i.id] for i in batch]

    def _write(self, batch: Sequence[OutboxItem], results: dict[int, WriteResult]) -> None:
        """Accounts, contacts, then tasks: one collections request per kind and 200 rows."""
        for kind, sobject in UPDATE_KINDS.items():
            items = [i for i in batch if i.kind == kind]
            owned = self.maps[
                ObjectType.ACCOUNT if sobject == "Account" else ObjectType.CONTACT
            ].owned
            prepared = self._prepare(
                items, partial(_update_record, sobject=sobject, owned=owned), results
            )
            self._send(prepared, "composite/sobjects", results)
        tasks = [i for i in batch if i.kind in TASK_KINDS]
        prepared = self._prepare(tasks, self._task_record, results)
        if not prepared:
            return
        if self.upserts_tasks():
            self._send(
                prepared, f"composite/sobjects/Task/{self.key_field}", results, key=self.key_field
            )
        else:
            self._write_tasks_by_lookup(prepared, results)

    def upserts_tasks(self) -> bool:
        """Tasks are upserted by their key unless describe says it is no External ID here.

        (A key field describe does not list at all is upserted too: Salesforce refuses that
        as a missing field, which `crmsync setup` fixes and requeues.)"""
        info = self.resolve(ObjectType.TASK).infos.get(self.key_field.lower())
        return info is None or info.external_id

    # -------------------------------------------------------------- tasks without an External ID

    def _write_tasks_by_lookup(
        self, prepared: list[tuple[OutboxItem, dict[str, Any]]], results: dict[int, WriteResult]
    ) -> None:
        key = self.key_field
        for chunk in _chunks(prepared, BATCH, key):
            updates: list[tuple[OutboxItem, dict[str, Any]]] = []
            unknown: list[tuple[OutboxItem, dict[str, Any]]] = []
            for item, record in chunk:
                if item.kind is not WriteKind.CREATE_TASK and item.target_id:
                    updates.append((item, {**record, ID: item.target_id}))
                else:
                    unknown.append((item, record))
            creates: list[tuple[OutboxItem, dict[str, Any]]] = []
            if unknown:  # query before creating: a task with this key may exist already
                found = self.find_tasks_by_keys(str(r[key]) for _, r in unknown)
                for item, record in unknown:
                    task = found.get(str(record[key]))
                    if task is not None:
                        updates.append((item, {**record, ID: task.id}))
                    else:
                        creates.append((item, record))
            if updates:
                self._send(updates, "composite/sobjects", results)
            if creates:
                self._create_tasks(creates, results)

    def _create_tasks(
        self, pending: list[tuple[OutboxItem, dict[str, Any]]], results: dict[int, WriteResult]
    ) -> None:
        """POST the creates once; after a lost answer, look the keys up before resending."""
        key = self.key_field
        waits = retry_waits(self.client.retry, self.client.rng)
        while pending:
            try:
                answer = self.client.restful(
                    "composite/sobjects",
                    operation="composite",
                    method="POST",
                    json={"allOrNone": False, "records": [r for _, r in pending]},
                    retry=False,  # the outcome of a lost answer is unknown: never resend blind
                )
            except CrmUnavailable as exc:
                wait = next(waits, None)
                if wait is None:
                    raise
                log.warning(
                    "salesforce task create answer lost; looking the keys up before resending",
                    extra={"crm": "salesforce", "records": len(pending), "code": exc.code},
                )
                self.client.sleep(wait)
                found = self.find_tasks_by_keys(str(r[key]) for _, r in pending)
                for item, record in pending:
                    task = found.get(str(record[key]))
                    if task is not None:
                        results[item.id] = WriteResult(item.id, ok=True, crm_id=task.id)
                pending = [(i, r) for i, r in pending if str(r[key]) not in found]
                continue
            except (AuthFailed, QuotaExhausted):
                raise
            except CrmError as exc:  # the whole request refused (400): every item rejected
                for item, _ in pending:
                    results[item.id] = WriteResult(
                        item.id, ok=False, code=exc.code or str(exc.status), detail=exc.detail
                    )
                return
            answers = list(answer or [])
            for n, (item, _) in enumerate(pending):
                results[item.id] = _result(item, answers[n] if n < len(answers) else None)
            return

    def _task_record(self, item: OutboxItem) -> dict[str, Any]:
        payload = dict(item.payload)
        if item.kind == WriteKind.COMPLETE_TASK:
            payload.setdefault("status", "completed")
        record = task_payload(payload, self.key_field, item.key, self.task_owned)
        return {"attributes": {"type": "Task"}, **record}

    def _prepare(
        self,
        items: Iterable[OutboxItem],
        build: Callable[[OutboxItem], dict[str, Any]],
        results: dict[int, WriteResult],
    ) -> list[tuple[OutboxItem, dict[str, Any]]]:
        out = []
        for item in items:
            try:
                out.append((item, build(item)))
            except UnmappedField as exc:
                results[item.id] = WriteResult(
                    item.id,
                    ok=False,
                    code="UNMAPPED_FIELD",
                    detail=f"crmsync does not write {exc.args[0]!r} on Salesforce {item.kind}",
                    sent=False,
                )
            except MissingTarget:
                results[item.id] = WriteResult(
                    item.id,
                    ok=False,
                    code="MISSING_TARGET",
                    detail="update without a record id",
                    sent=False,
                )
        return out

    def _send(
        self,
        prepared: list[tuple[OutboxItem, dict[str, Any]]],
        path: str,
        results: dict[int, WriteResult],
        *,
        key: str | None = None,
    ) -> None:
        for chunk in _chunks(prepared, BATCH, key):
            records = [r for _, r in chunk]
            try:
                answer = self.client.restful(
                    path,
                    operation="composite",
                    method="PATCH",
                    json={"allOrNone": False, "records": records},
                )
            except (CrmUnavailable, AuthFailed, QuotaExhausted):
                raise
            except CrmError as exc:  # the whole request refused (400): every item rejected
                for item, _ in chunk:
                    results[item.id] = WriteResult(
                        item.id, ok=False, code=exc.code or str(exc.status), detail=exc.detail
                    )
                continue
            answers = list(answer or [])
            for n, (item, _) in enumerate(chunk):
                results[item.id] = _result(item, answers[n] if n < len(answers) else None)
            rejected = [results[i.id] for i, _ in chunk if not results[i.id].ok]
            if rejected:
                log.warning(
                    "salesforce rejected %d of %d records",
                    len(rejected),
                    len(chunk),
                    extra={
                        "crm": "salesforce",
                        "path": path.split("/")[-1] if key else "sobjects",
                        "codes": sorted({r.code or "" for r in rejected}),
                        "item_ids": [r.item_id for r in rejected][:10],
                    },
                )

    # -------------------------------------------------------------- lookups

    def find_tasks_by_keys(self, keys: Iterable[str]) -> dict[str, CrmRecord]:
        """The tasks that carry these crmsync keys, by key (live tasks only)."""
        res = self.resolve(ObjectType.TASK)
        key_field = res.actual(self.key_field)
        if key_field is None:
            return {}
        found: dict[str, CrmRecord] = {}
        unique = sorted(set(keys))
        for start in range(0, len(unique), KEYS_PER_QUERY):
            part = unique[start : start + KEYS_PER_QUERY]
            soql = format_soql(
                f"SELECT {', '.join(res.select)} FROM Task WHERE {key_field} IN {{}} ORDER BY Id",
                part,
            )
            for raw in self._query(soql):
                record, _ = res.to_record(raw)
                key = record.values.get("key")
                if key:
                    found[str(key)] = record
        return found

    def _query(self, soql: str) -> Iterator[Mapping[str, Any]]:
        headers = {"Sforce-Query-Options": "batchSize=2000"}
        page = self.client.query(soql, include_deleted=False, headers=headers)
        while True:
            yield from page.get("records") or ()
            if page.get("done", True) or not page.get("nextRecordsUrl"):
                return
            page = self.client.query_more(page["nextRecordsUrl"], headers=headers)


class MissingTarget(ValueError):
    pass


def _update_record(item: OutboxItem, sobject: str, owned: Mapping[str, str]) -> dict[str, Any]:
    if not item.target_id:
        raise MissingTarget(item.id)
    return {
        "attributes": {"type": sobject},
        ID: item.target_id,
        **owned_payload(item.payload, owned),
    }


def _chunks(
    prepared: list[tuple[OutboxItem, dict[str, Any]]], size: int, key: str | None
) -> Iterator[list[tuple[OutboxItem, dict[str, Any]]]]:
    """Chunks of ≤ size; with `key`, no two records of a chunk share it (upsert would fail)."""
    pending = list(prepared)
    while pending:
        chunk: list[tuple[OutboxItem, dict[str, Any]]] = []
        later: list[tuple[OutboxItem, dict[str, Any]]] = []
        seen: set[Any] = set()
        for entry in pending:
            k = entry[1].get(key) if key else None
            if len(chunk) >= size or (key and k in seen):
                later.append(entry)
                continue
            seen.add(k)
            chunk.append(entry)
        yield chunk
        pending = later


def _result(item: OutboxItem, answer: Mapping[str, Any] | None) -> WriteResult:
    if answer is None:
        return WriteResult(
            item.id,
            ok=False,
            code="NO_RESULT",
            detail="Salesforce returned no result",
            retryable=True,
        )
    if answer.get("success"):
        return WriteResult(item.id, ok=True, crm_id=answer.get("id"))
    errors = list(answer.get("errors") or ())
    code = str((errors[0].get("statusCode") if errors else None) or "UNKNOWN_ERROR")
    detail = "; ".join(
        f"{e.get('statusCode')}: {e.get('message')}"
        + (f" (fields: {', '.join(e.get('fields') or ())})" if e.get("fields") else "")
        for e in errors
    )
    return WriteResult(
        item.id,
        ok=False,
        crm_id=answer.get("id"),
        code=code,
        detail=detail or None,
        retryable=code in RETRYABLE_CODES,
    )
