"""The Durable extension's management API, one method per operation.

Served twice: on the RPC base URL the SDK calls (loopback-only, no key, as in Azure) and under
/runtime/webhooks/durabletask on the public port, where the system key is required.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from aiohttp import web

from devhost import errors
from devhost.durable import events as ev
from devhost.durable.engine import Engine
from devhost.store.sqlite import FINISHED, Store

RUNNING = ("Pending", "Running", "ContinuedAsNew", "Suspended")


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise errors.bad_request(f"Invalid date: {text}") from None


def _top(text: str | None) -> int:
    if not text:
        return 1000
    if not text.isdigit() or not 0 < int(text) <= 10000:
        raise errors.bad_request("top must be a whole number from 1 to 10000.")
    return int(text)


def _loads(text: str | None):
    return None if text is None else json.loads(text)


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() == "true"


def status_payload(row: dict, show_input: bool, history: list[str] | None = None) -> dict:
    """The wire shape of an instance, as the extension's status endpoint answers it."""
    payload = {
        "name": row["name"],
        "instanceId": row["id"],
        "runtimeStatus": row["status"],
        "input": row["input"] if show_input else None,
        "customStatus": _loads(row["custom_status"]),
        "output": _loads(row["output"]),
        "createdTime": _time(row["created"]),
        "lastUpdatedTime": _time(row["updated"]),
    }
    if history is not None:
        payload["historyEvents"] = [json.loads(e) for e in history]
    return payload


class ManagementApi:
    def __init__(
        self,
        store: Store,
        engine: Engine,
        orchestrators: set[str],
        status_url: Callable[[str], str],
        clock: Callable[[], float] = time.time,
    ):
        self.store, self.engine, self.orchestrators = store, engine, orchestrators
        self.status_url, self.clock = status_url, clock

    def routes(self, prefix: str) -> list[web.RouteDef]:
        p = prefix.rstrip("/")
        return [
            web.post(p + "/orchestrators/{name}", self.start),
            web.post(p + "/orchestrators/{name}/{id}", self.start),
            web.get(p + "/instances", self.list),
            web.get(p + "/instances/", self.list),
            web.delete(p + "/instances", self.purge_many),
            web.delete(p + "/instances/", self.purge_many),
            web.get(p + "/instances/{id}", self.status),
            web.delete(p + "/instances/{id}", self.purge),
            web.post(p + "/instances/{id}/raiseEvent/{event}", self.raise_event),
            web.post(p + "/instances/{id}/terminate", self.terminate),
            web.post(p + "/instances/{id}/suspend", self.suspend),
            web.post(p + "/instances/{id}/resume", self.resume),
            web.post(p + "/instances/{id}/restart", self.restart),
            web.post(p + "/instances/{id}/rewind", self.rewind),
        ]

    def _instance(self, request: web.Request) -> dict:
        row = self.store.get_instance(request.match_info["id"])
        if row is None:
            raise errors.not_found()
        return row

    def _live(self, request: web.Request) -> dict:
        row = self._instance(request)
        if row["status"] in FINISHED:
            raise errors.gone(row["id"])
        return row

    def _start(self, name: str, instance_id: str, input_text: str | None) -> web.Response:
        if name not in self.orchestrators:
            raise errors.unknown_orchestrator(name)
        now = self.clock()
        start = ev.execution_started(now, instance_id, name, input_text, None)
        if not self.store.create_instance(instance_id, name, input_text, start, now):
            raise errors.conflict(instance_id)
        self.engine.notify()
        url = self.status_url(instance_id)
        return web.json_response(
            {"id": instance_id, "statusQueryGetUri": url},
            status=202,
            headers={"Location": url, "Retry-After": "1"},
        )

    async def start(self, request: web.Request) -> web.Response:
        body = await request.text()
        try:
            input_text = json.loads(body) if body.strip() else None
        except ValueError:
            raise errors.bad_request("The request body is not valid JSON.") from None
        if input_text is not None and not isinstance(input_text, str):
            input_text = json.dumps(input_text)  # a caller that sent the input once-encoded
        instance_id = request.match_info.get("id") or uuid.uuid4().hex
        return self._start(request.match_info["name"], instance_id, input_text)

    async def status(self, request: web.Request) -> web.Response:
        row = self._instance(request)
        history = self.store.history(row["id"]) if _flag(request, "showHistory") else None
        payload = status_payload(row, _flag(request, "showInput"), history)
        if row["status"] in RUNNING:
            url = self.status_url(row["id"])
            return web.json_response(
                payload, status=202, headers={"Location": url, "Retry-After": "1"}
            )
        return web.json_response(payload, status=200)

    def _filtered(self, request: web.Request) -> list[dict]:
        q = request.query
        statuses = [s for s in q.get("runtimeStatus", "").split(",") if s]
        return self.store.list_instances(
            _epoch(q.get("createdTimeFrom")),
            _epoch(q.get("createdTimeTo")),
            statuses,
            q.get("instanceIdPrefix"),
            _top(q.get("top")),
        )

    async def list(self, request: web.Request) -> web.Response:
        show_input = _flag(request, "showInput")
        return web.json_response([status_payload(r, show_input) for r in self._filtered(request)])

    async def purge(self, request: web.Request) -> web.Response:
        if not self.store.purge(request.match_info["id"]):
            raise errors.not_found()
        return web.json_response({"instancesDeleted": 1})

    async def purge_many(self, request: web.Request) -> web.Response:
        rows = [r for r in self._filtered(request) if r["status"] in FINISHED]
        deleted = sum(self.store.purge(r["id"]) for r in rows)
        if not deleted:
            raise errors.not_found()
        return web.json_response({"instancesDeleted": deleted})

    async def raise_event(self, request: web.Request) -> web.Response:
        row = self._live(request)
        body = await request.text()
        event = ev.event_raised(self.clock(), request.match_info["event"], body or None)
        self.store.send(row["id"], event, self.clock())
        self.engine.notify()
        return web.Response(status=202)

    async def terminate(self, request: web.Request) -> web.Response:
        row = self._live(request)
        reason = request.query.get("reason", "")
        now = self.clock()
        self.store.terminate(
            row["id"], json.dumps(reason), ev.execution_terminated(now, reason), now
        )
        if row["parent_id"]:
            notice = ev.sub_orchestration_failed(now, row["parent_task"], "terminated", reason)
            self.store.send(row["parent_id"], notice, now)
            self.engine.notify()
        return web.Response(status=202)

    async def suspend(self, request: web.Request) -> web.Response:
        row = self._live(request)
        self.store.set_status(row["id"], "Suspended", self.clock())
        return web.Response(status=202)

    async def resume(self, request: web.Request) -> web.Response:
        row = self._live(request)
        if row["status"] == "Suspended":
            self.store.set_status(row["id"], "Running", self.clock())
            self.engine.notify()
        return web.Response(status=202)

    async def restart(self, request: web.Request) -> web.Response:
        row = self._instance(request)
        new_id = uuid.uuid4().hex
        if request.query.get("restartWithNewInstanceId", "true").lower() == "false":
            new_id = row["id"]
            if row["status"] not in FINISHED:
                raise errors.conflict(new_id)
        return self._start(row["name"], new_id, row["input"])

    async def rewind(self, request: web.Request) -> web.Response:
        self._instance(request)
        raise errors.ApiError(501, "Rewind is not supported by the local host.")
