"""The Durable extension's management API, one method per operation.

Served twice: on the RPC base URL the SDK calls (loopback-only, no key, as in Azure) and under
/runtime/webhooks/durabletask on the public port, where the system key is required.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web

from devhost import errors
from devhost.durable.engine import Engine, PlainAnswer
from devhost.durable.entities import entity_id, split_entity_id
from devhost.durable.model import ACTIVE, Instance, RuntimeStatus
from devhost.http.history import render_history

DEFAULT_PAGE = 100  # the extension's page size when `top` is not given
MAX_PAGE = 10_000
CONTINUATION = "x-ms-continuation-token"
STATUS_NAMES = {str(s) for s in RuntimeStatus}  # the extension drops names it does not know
CHECK_STATUS_KEYS = (
    "statusQueryGetUri",
    "sendEventPostUri",
    "terminatePostUri",
    "purgeHistoryDeleteUri",
    "restartPostUri",
    "suspendPostUri",
    "resumePostUri",
)


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(text: str | None) -> float | None:
    """A query date; one that does not parse is ignored, as the extension's TryParse does."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else None
    except ValueError:
        return None


def _top(text: str | None) -> int:
    """The page size; the extension's default when it is missing or not a positive number."""
    return int(text) if text and text.isdigit() and 0 < int(text) <= MAX_PAGE else DEFAULT_PAGE


def _loads(text: str | None):
    return None if text is None else json.loads(text)


def _flag(request: web.Request, name: str, default: bool = False) -> bool:
    """A boolean query parameter, read as .NET's bool.TryParse would (else the default)."""
    value = request.query.get(name, "").lower()
    return {"true": True, "false": False}.get(value, default)


def _seconds(request: web.Request, name: str) -> float | None:
    text = request.query.get(name)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise errors.bad_argument(f"{name} must be a number of seconds.") from None
    if not math.isfinite(value) or value < 0:
        raise errors.bad_argument(f"{name} must be a number of seconds.")
    return value


def page_token(last: Instance) -> str:
    return base64.urlsafe_b64encode(json.dumps([last.created, last.id]).encode()).decode()


def _after(token: str | None) -> tuple[float, str] | None:
    """The continuation token of the previous page: where this page starts."""
    if not token:
        return None
    try:
        created, instance_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        return float(created), str(instance_id)
    except (ValueError, TypeError):
        raise errors.bad_argument("Invalid x-ms-continuation-token.") from None


def status_payload(row: Instance, show_input: bool, history: list[dict] | None = None) -> dict:
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
        payload["historyEvents"] = history
    return payload


def _plain_answers(
    handler: Callable[[web.Request], Awaitable[web.Response]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The refusals the extension words in a shape of its own go out in that shape."""

    @functools.wraps(handler)
    async def answer(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except PlainAnswer as refused:
            return web.json_response(refused.body, status=refused.status)

    return answer


class ManagementApi:
    """Parses each request, asks the engine, renders its answer."""

    def __init__(self, engine: Engine, links: Callable[[str], dict[str, str]]) -> None:
        """`links(id)` gives the instance's management URLs (the binding's managementUrls)."""
        self.engine, self.links = engine, links

    def routes(self, prefix: str) -> list[web.RouteDef]:
        p = prefix.rstrip("/")
        routes = [
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
            web.get(p + "/entities/{name}", self.list_entities),
            web.get(p + "/entities/{name}/{key}", self.entity_state),
            web.post(p + "/entities/{name}/{key}", self.signal_entity),
            web.delete(p + "/entities/{name}/{key}", self.signal_entity),
        ]
        return [web.RouteDef(r.method, r.path, _plain_answers(r.handler), r.kwargs) for r in routes]

    def check_status(self, instance_id: str) -> web.Response:
        """The 202 the extension answers a start with: every management URL of the instance."""
        links = self.links(instance_id)
        body = {"id": instance_id, **{k: links[k] for k in CHECK_STATUS_KEYS}}
        headers = {"Location": links["statusQueryGetUri"], "Retry-After": "10"}
        return web.json_response(body, status=202, headers=headers)

    async def _started(self, request: web.Request, instance: Instance) -> web.Response:
        """The check-status 202, or with `timeout` and `pollingInterval` (seconds) the
        finished instance if it finishes in time (create-and-wait)."""
        timeout = _seconds(request, "timeout")
        interval = _seconds(request, "pollingInterval")
        if timeout is None or interval is None:
            return self.check_status(instance.id)
        if interval > timeout:
            raise errors.bad_argument(
                f"Total timeout {timeout} should be bigger than retry timeout {interval}"
            )
        deadline = time.monotonic() + timeout
        while True:
            current = self.engine.instance(instance.id)
            if current.status == RuntimeStatus.COMPLETED:
                return web.json_response(_loads(current.output), status=200)
            if current.finished:
                return web.json_response(status_payload(current, True), status=200)
            left = deadline - time.monotonic()
            if left <= 0:
                return self.check_status(instance.id)
            await asyncio.sleep(min(interval, left) or 0.01)

    async def start(self, request: web.Request) -> web.Response:
        body = await request.text()
        try:
            input_text = json.loads(body) if body.strip() else None
        except ValueError:
            raise errors.bad_request("Invalid JSON content") from None
        if input_text is not None and not isinstance(input_text, str):
            input_text = json.dumps(input_text)  # a caller that sent the input once-encoded
        instance_id = request.match_info.get("id") or uuid.uuid4().hex
        started = self.engine.start(request.match_info["name"], instance_id, input_text)
        return await self._started(request, started)

    async def status(self, request: web.Request) -> web.Response:
        row = self.engine.instance(request.match_info["id"])
        show_input = _flag(request, "showInput", True)
        history = None
        if _flag(request, "showHistory") and row.status != RuntimeStatus.PENDING:
            history = render_history(
                self.engine.history(row.id), show_input, _flag(request, "showHistoryOutput")
            )
        payload = status_payload(row, show_input, history)
        if row.status in ACTIVE:
            headers = {"Location": str(request.url), "Retry-After": "5"}
            return web.json_response(payload, status=202, headers=headers)
        failed = row.status == RuntimeStatus.FAILED
        code = 500 if failed and _flag(request, "returnInternalServerErrorOnFailure") else 200
        return web.json_response(payload, status=code)

    def _query(self, request: web.Request, limit: int, after=None) -> list[Instance]:
        q = request.query
        statuses = [s for s in q.get("runtimeStatus", "").split(",") if s in STATUS_NAMES]
        return self.engine.instances(
            created_from=_epoch(q.get("createdTimeFrom")),
            created_to=_epoch(q.get("createdTimeTo")),
            statuses=statuses,
            prefix=q.get("instanceIdPrefix"),
            limit=limit,
            after=after,
        )

    async def list(self, request: web.Request) -> web.Response:
        """One page; `x-ms-continuation-token` carries the next (empty on the last page)."""
        top = _top(request.query.get("top"))
        rows = self._query(request, top, _after(request.headers.get(CONTINUATION)))
        show_input = _flag(request, "showInput", True)
        token = page_token(rows[-1]) if len(rows) == top else ""
        return web.json_response(
            [status_payload(r, show_input) for r in rows], headers={CONTINUATION: token}
        )

    async def purge(self, request: web.Request) -> web.Response:
        """404 for an unknown orchestration, 412 for one still running (Engine.purge)."""
        deleted = self.engine.purge(request.match_info["id"])
        return web.json_response({"instancesDeleted": deleted})

    async def purge_many(self, request: web.Request) -> web.Response:
        if not request.query.get("createdTimeFrom"):
            return web.json_response(
                "Please provide value for 'createdTimeFrom' parameter.", status=400
            )
        deleted = self.engine.purge_finished(self._query(request, -1))
        if not deleted:
            raise errors.not_found()
        return web.json_response({"instancesDeleted": deleted})

    async def raise_event(self, request: web.Request) -> web.Response:
        """Checked in the extension's order: 404, 410, then the body must be JSON."""
        instance_id = request.match_info["id"]
        self.engine.live(instance_id)
        if request.content_type.lower() != "application/json":
            raise errors.bad_request("Only application/json request content is supported")
        body = await request.text()
        try:
            json.loads(body)
        except ValueError:
            raise errors.bad_request("Invalid JSON content") from None
        self.engine.raise_event(instance_id, request.match_info["event"], body)
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
        same = not _flag(request, "restartWithNewInstanceId", True)
        new_id = None if same else uuid.uuid4().hex
        return await self._started(request, self.engine.restart(request.match_info["id"], new_id))

    async def rewind(self, request: web.Request) -> web.Response:
        self.engine.rewind(request.match_info["id"], request.query.get("reason"))
        return web.Response(status=202)

    # ---- entities
    @staticmethod
    def _entity_key(request: web.Request) -> tuple[str, str]:
        key = request.match_info["key"]
        return request.match_info["name"], "" if key == "$" else key  # "$": the empty key

    async def entity_state(self, request: web.Request) -> web.Response:
        """200 with the state as its JSON body, or 404 when the entity does not exist."""
        found = self.engine.entity(*self._entity_key(request))
        if found is None:
            raise errors.not_found()
        return web.Response(text=found.output or "null", content_type="application/json")

    async def signal_entity(self, request: web.Request) -> web.Response:
        """POST ?op= (DELETE is the operation `delete`); a JSON body is the operation's input."""
        operation = "delete" if request.method == "DELETE" else request.query.get("op", "")
        body = await request.text()
        input_text = None
        if body and request.content_type.lower() == "application/json":
            try:
                input_text = json.dumps(json.loads(body))
            except ValueError as error:
                raise errors.bad_request(f"Could not parse JSON content: {error}") from None
        elif body:
            input_text = json.dumps(body)
        self.engine.signal_entity(*self._entity_key(request), operation, input_text)
        return web.Response(status=202)

    async def list_entities(self, request: web.Request) -> web.Response:
        q = request.query
        top = _top(q.get("top"))
        rows = self.engine.instances(
            entities=True,
            prefix=entity_id(request.match_info["name"], ""),
            statuses=[RuntimeStatus.RUNNING],  # those that exist
            updated_from=_epoch(q.get("lastOperationTimeFrom")),
            updated_to=_epoch(q.get("lastOperationTimeTo")),
            limit=top,
            after=_after(request.headers.get(CONTINUATION)),
        )
        fetch = _flag(request, "fetchState")
        items = []
        for row in rows:
            name, key = split_entity_id(row.id)
            items.append(
                {
                    "entityId": {"name": name, "key": key},
                    "lastOperationTime": _time(row.updated),
                    "state": _loads(row.output) if fetch else None,
                }
            )
        token = page_token(rows[-1]) if len(rows) == top else ""
        return web.json_response(items, headers={CONTINUATION: token})
