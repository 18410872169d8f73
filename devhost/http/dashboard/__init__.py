"""The jobs dashboard: three static files over the management API, served behind the system key.

Only the page needs the key (it reads it from its own ?code= to call the API); its script and
style hold no data. A strict Content-Security-Policy keeps the page to this host.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

HERE = Path(__file__).resolve().parent
FILES = {
    "index.html": "text/html",
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
}
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _static(name: str) -> web.RouteDef:
    body = (HERE / name).read_bytes()

    async def serve(_: web.Request) -> web.Response:
        response = web.Response(body=body, content_type=FILES[name], charset="utf-8")
        response.headers["Content-Security-Policy"] = POLICY
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"  # the page's URL holds the key
        return response

    return web.get("/" + name, serve)


def page() -> web.RouteDef:
    """GET .../dashboard: the page (to be wrapped with the system key)."""
    return _static("index.html")


def assets() -> list[web.RouteDef]:
    return [_static("dashboard.js"), _static("dashboard.css")]
