"""The Durable extension's management API, one method per operation.

Served twice: on the RPC base URL the SDK calls (loopback-only, no key, as in Azure) and under
/runtime/webhooks/durabletask on the public port, where the system key is required.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from aiohttp import web

from devhost import errors
from devhost.durable.engine import Engine
from devhost.durable.model import ACTIVE, Instance


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


def status_payload(row: Instance, show_input: bool, history: list[str] | None = None) -> dict:
    """The wire shape of an instance, as the extension's status endpoint answers it."""
    payload = {
        "name": row.name,
        "instanceId": row.id,
        "runtimeStatus": str(row.status),
        "input": row.input if show_input else None,
        "customStatus": _loads(row.custom_status),
        "output": _loads(row.output),
        "createdTime": _time(row.created),
        "lastUpdatedTime": _time(row.updated),
    }
    if history is not None:
        payload["historyEvents"] = [json.loads(e) for e in history]
    return payload


class ManagementApi:
    """Parses each request, asks the engine, renders its answer."""

    def __init__(self, engine: Engine, status_url: Callable[[str], str]) -> None:
        self.engine, self.status_url = engine, status_url

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

    def _started(self, instance: Instance) -> web.Response:
        url = self.status_url(instance.id)
        return web.json_response(
            {"id": instance.id, "statusQueryGetUri": url},
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
        return self._started(self.engine.start(request.match_info["name"], instance_id, input_text))

    async def status(self, request: web.Request) -> web.Response:
        row = self.engine.instance(request.match_info["id"])
        history = self.engine.history(row.id) if _flag(request, "showHistory") else None
        payload = status_payload(row, _flag(request, "showInput"), history)
        if row.status in ACTIVE:
            url = self.status_url(row.id)
            return web.json_response(
                payload, status=202, headers={"Location": url, "Retry-After": "1"}
            )
        return web.json_response(payload, status=200)

    def _filtered(self, request: web.Request) -> list[Instance]:
        q = request.query
        statuses = [s for s in q.get("runtimeStatus", "").split(",") if s]
        return self.engine.instances(
            created_from=_epoch(q.get("createdTimeFrom")),
            created_to=_epoch(q.get("createdTimeTo")),
            statuses=statuses,
            prefix=q.get("instanceIdPrefix"),
            limit=_top(q.get("top")),
        )

    async def list(self, request: web.Request) -> web.Response:
        show_input = _flag(request, "showInput")
        return web.json_response([status_payload(r, show_input) for r in self._filtered(request)])

    async def purge(self, request: web.Request) -> web.Response:
        if not self.engine.purge(request.match_info["id"]):
            raise errors.not_found()
        return web.json_response({"instancesDeleted": 1})

    async def purge_many(self, request: web.Request) -> web.Response:
        deleted = self.engine.purge_finished(self._filtered(request))
        if not deleted:
            raise errors.not_found()
        return web.json_response({"instancesDeleted": deleted})

    async def raise_event(self, request: web.Request) -> web.Response:
        body = await request.text()
        self.engine.raise_event(request.match_info["id"], request.match_info["event"], body or None)
        return web.Response(status=202)

    async def terminate(self, request: web.Request) -> web.Response:
        self.engine.terminate(request.match_info["id"], request.query.get("reason", ""))
        return web.Response(status=202)

    async def suspend(self, request: web.Request) -> web.Response:
        self.engine.suspend(request.match_info["id"], request.query.get("reason"))
        return web.Response(status=202)

    async def resume(self, request: web.Request) -> web.Response:
        self.engine.resume(request.match_info["id"], request.query.get("reason"))
        return web.Response(status=202)

    async def restart(self, request: web.Request) -> web.Response:
        same = request.query.get("restartWithNewInstanceId", "true").lower() == "false"
        new_id = None if same else uuid.uuid4().hex
        return self._started(self.engine.restart(request.match_info["id"], new_id))

    async def rewind(self, request: web.Request) -> web.Response:
        self.engine.instance(request.match_info["id"])
        raise errors.ApiError(501, "Rewind is not supported by the local host.")
