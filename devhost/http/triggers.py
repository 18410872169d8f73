"""HTTP-triggered functions: route templates, binding conversion, the response back."""

from __future__ import annotations

import logging
import re
import time
import traceback
from collections.abc import Callable
from typing import Any

import azure.functions as func
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from devhost.errors import FunctionLoadError, FunctionTimeoutError
from devhost.functions.bindings import arguments
from devhost.functions.catalog import FunctionSpec
from devhost.functions.invoker import Invoker

log = logging.getLogger("devhost.http")
_PARAM = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::([^}?]*))?(\?)?\}")
_CONSTRAINTS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "guid": r"[0-9a-fA-F-]{32,36}",
    "alpha": r"[A-Za-z]+",
    "bool": r"(?i:true|false)",
}
INTERNAL_ERROR = b'{"error": "Internal server error."}'


def route_paths(prefix: str, template: str) -> list[str]:
    """aiohttp paths for a Functions route template ({id}, {id:int}, {id?}, {*rest})."""
    optional = False

    def convert(match: re.Match) -> str:
        nonlocal optional
        star, name, constraint, maybe = match.groups()
        optional = optional or bool(maybe)
        if star:
            return f"{{{name}:.*}}"
        pattern = _CONSTRAINTS.get((constraint or "").split("(")[0])
        return f"{{{name}:{pattern}}}" if pattern else f"{{{name}}}"

    path = "/" + "/".join(p for p in (prefix, template.strip("/")) if p)
    full = _PARAM.sub(convert, path)
    if not optional:
        return [full]
    shorter = re.sub(r"/\{[^}]*\}$", "", full) or "/"
    return [full, shorter]


def to_http_request(request: web.Request, body: bytes) -> func.HttpRequest:
    params: dict[str, str] = {}
    for key, value in request.query.items():
        params.setdefault(key, value)  # a repeated parameter: the first one counts
    return func.HttpRequest(
        method=request.method,
        url=str(request.url),
        headers=dict(request.headers),
        params=params,
        route_params=dict(request.match_info),
        body=body,
    )


def to_web_response(value: Any) -> web.Response:
    if value is None:
        return web.Response(status=204)
    if isinstance(value, func.HttpResponse):
        headers = {k: v for k, v in value.headers.items() if k.lower() != "content-type"}
        content_type = value.headers.get("Content-Type") or (
            f"{value.mimetype}; charset={value.charset}" if value.mimetype else None
        )
        if content_type:
            headers["Content-Type"] = content_type
        return web.Response(status=value.status_code, headers=headers, body=value.get_body())
    if isinstance(value, (str, bytes)):
        return web.Response(
            status=200,
            body=value if isinstance(value, bytes) else value.encode(),
            content_type="text/plain",
            charset="utf-8",
        )
    raise TypeError(f"unsupported HTTP output {type(value).__name__}")


class TriggerHandler:
    """Calls one HTTP-triggered function per request."""

    def __init__(
        self,
        spec: FunctionSpec,
        invoker: Invoker,
        timeout: float,
        durable_binding: Callable[[], str],
    ) -> None:
        self.spec, self.invoker, self.timeout = spec, invoker, timeout
        self.durable_binding = durable_binding
        self.methods = {m.upper() for m in spec.trigger.get("methods") or []}

    async def __call__(self, request: web.Request) -> web.Response:
        if self.methods and request.method not in self.methods:
            return web.json_response(
                {"error": "Method not allowed."},
                status=405,
                headers={"Allow": ", ".join(sorted(self.methods))},
            )
        began = time.perf_counter()
        try:
            body = await request.read()
        except RequestPayloadError:  # not what its Content-Encoding says, or cut short
            return web.json_response({"error": "Invalid request body."}, status=400)
        kwargs, outputs = arguments(self.spec, to_http_request(request, body), self.durable_binding)
        try:
            value = await self.invoker.call_within(self.spec.name, kwargs, self.timeout)
            if outputs:
                value = next(iter(outputs.values())).get() if value is None else value
            response = to_web_response(value)
            label = str(response.status)
        except Exception as error:  # noqa: BLE001 - the caller gets a 500, the log the cause
            if isinstance(error, FunctionLoadError | FunctionTimeoutError):  # one line says it
                log.error("Executed 'Functions.%s' (Failed): %s", self.spec.name, error)
            else:
                log.error("%s raised:\n%s", self.spec.name, traceback.format_exc())
            response = web.Response(
                status=500, body=INTERNAL_ERROR, content_type="application/json"
            )
            label = "500 error"
        log.info(
            "%s %s %s %.1fms %s",
            self.spec.name,
            request.method,
            request.path,
            (time.perf_counter() - began) * 1000,
            label,
        )
        return response
