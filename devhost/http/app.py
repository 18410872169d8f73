"""The one place the HTTP pipeline is assembled. Order: Host check -> errors -> keys -> handler.

Two applications: the public one (function routes, the keyed management webhooks, the ping) and
the RPC one the SDK calls through rpcBaseUrl, bound to loopback only.
"""

from __future__ import annotations

import hmac
import logging
import sqlite3
import traceback
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from devhost.config import HostConfig
from devhost.durable.backoff import Backoff
from devhost.errors import ApiError
from devhost.functions.invoker import Invoker
from devhost.http import dashboard
from devhost.http.management import ManagementApi
from devhost.http.triggers import TriggerHandler, route_paths

log = logging.getLogger("devhost.http")
_store_faults = Backoff(log)  # only for its quiet log: once per distinct failure per minute
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WEBHOOKS = "/runtime/webhooks/durabletask"
UNAUTHORIZED = {"error": "Unauthorized: send a valid key as x-functions-key or ?code=."}


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def host_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A Host header whose port is not a port (99999, -1, abc) cannot make a URL: refuse it
    here, before any handler builds one."""
    try:
        _ = request.url.port
    except ValueError:
        return _json_error(400, "Invalid Host header.")
    return await handler(request)


def cors_middleware(origins: tuple[str, ...], credentials: bool) -> Handler:
    """local.settings.json Host.CORS, as Core Tools applies it: an allowed origin's preflight is
    answered here (no key needed), and every answer to it names the origin."""

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin", "")
        allowed = bool(origin) and ("*" in origins or origin.rstrip("/") in origins)
        wanted = request.headers.get("Access-Control-Request-Method")
        if allowed and request.method == "OPTIONS" and wanted:
            response = web.Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = wanted
            asked = request.headers.get("Access-Control-Request-Headers")
            if asked:
                response.headers["Access-Control-Allow-Headers"] = asked
            response.headers["Access-Control-Max-Age"] = "600"
        else:
            response = await handler(request)
        if allowed:
            wildcard = "*" in origins and not credentials
            response.headers["Access-Control-Allow-Origin"] = "*" if wildcard else origin
            if credentials:
                response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers.add("Vary", "Origin")
        return response

    return cors


def _api_error(error: ApiError) -> web.Response:
    if not error.message:
        return web.Response(status=error.status)
    body = {"Message": error.summary, "ExceptionMessage": error.message}
    return web.json_response(body, status=error.status)


def _store_unavailable(error: sqlite3.Error) -> web.Response:
    """The store failing (a full disk, a damaged file) is the host's 503, logged quietly."""
    _store_faults.failed("store", f"the store failed: {type(error).__name__}: {error}")
    response = _json_error(503, "The host's store is unavailable; retry later.")
    response.headers["Retry-After"] = "10"
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every error as JSON; never a traceback on the wire."""
    try:
        return await handler(request)
    except RequestPayloadError:  # e.g. a body that is not what its Content-Encoding says
        return _json_error(400, "Invalid request body.")
    except sqlite3.Error as error:
        return _store_unavailable(error)
    except ApiError as error:
        return _api_error(error)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return _json_error(error.status, error.reason)
    except Exception:  # noqa: BLE001
        log.error(
            "unhandled error on %s %s:\n%s", request.method, request.path, traceback.format_exc()
        )
        return _json_error(500, "Internal server error.")


def _key(request: web.Request) -> bytes:
    """The presented key as bytes: a header that is not UTF-8 arrives with surrogates, which
    must compare unequal, not fail."""
    text = request.headers.get("x-functions-key") or request.query.get("code", "")
    return text.encode("utf-8", "surrogateescape")


def require_key(handler: Handler, keys: list[str]) -> Handler:
    """Wrap a handler so only callers presenting one of `keys` reach it."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        presented = _key(request)
        if not any(hmac.compare_digest(presented, k.encode()) for k in keys):
            return web.json_response(UNAUTHORIZED, status=401)
        return await handler(request)

    return guarded


def _keys_for(level: str, config: HostConfig) -> list[str] | None:
    if level == "anonymous":
        return None
    if level == "admin":
        return [config.system_key]
    return [config.function_key, config.system_key]


async def ping(_: web.Request) -> web.Response:
    return web.Response(status=200)


def public_app(
    config: HostConfig, handlers: list[TriggerHandler], api: ManagementApi, max_body: int
) -> web.Application:
    middlewares = [host_middleware, error_middleware]
    if config.cors_origins:
        middlewares.insert(1, cors_middleware(config.cors_origins, config.cors_credentials))
    app = web.Application(middlewares=middlewares, client_max_size=max_body)
    app.router.add_get("/admin/host/ping", ping)
    for handler in handlers:
        keys = _keys_for(str(handler.spec.trigger.get("authLevel", "function")).lower(), config)
        wrapped = handler if keys is None else require_key(handler, keys)
        route = handler.spec.trigger.get("route") or handler.spec.name
        for path in route_paths(config.route_prefix, route):
            app.router.add_route("*", path, wrapped)
    for route in api.routes(WEBHOOKS):
        app.router.add_route(
            route.method, route.path, require_key(route.handler, [config.system_key])
        )
    app.router.add_get(
        WEBHOOKS + "/dashboard", require_key(dashboard.page().handler, [config.system_key])
    )
    for asset in dashboard.assets():
        app.router.add_get(WEBHOOKS + asset.path, asset.handler)
    return app


def rpc_app(api: ManagementApi) -> web.Application:
    app = web.Application(
        middlewares=[host_middleware, error_middleware], client_max_size=64 * 1024 * 1024
    )
    app.add_routes(api.routes("/durabletask"))
    return app


def describe_functions(
    config: HostConfig, invoker: Invoker, handlers: list[TriggerHandler], in_error: dict[str, str]
) -> list[str]:
    """Every function with its trigger, as Core Tools lists them; those in error say so."""
    routes = {}
    for handler in handlers:
        route = handler.spec.trigger.get("route") or handler.spec.name
        methods = ",".join(sorted(handler.methods)) or "ALL"
        path = route_paths(config.route_prefix, route)[0]
        routes[handler.spec.name] = f"[{methods}] {config.public_base}{path}"
    lines = []
    for name in sorted({*invoker.functions, *in_error}):
        spec = invoker.functions.get(name)
        if spec is None or name in invoker.load_errors:
            lines.append(f"  {name}: in error (see above)")
        elif name in routes:
            lines.append(f"  {name}: {routes[name]}")
        elif spec.kind == "timer":
            lines.append(f"  {name}: timerTrigger ({spec.trigger['schedule']})")
        else:
            lines.append(f"  {name}: {spec.trigger['type']}")
    return lines
