"""`call_http`: the extension's built-in activity (`HTTP_ACTIVITY`), for loopback targets.

The orchestrator's CallHttp action becomes a task of that activity whose input is
`[DurableHttpRequest]`; its result is a DurableHttpResponse (`statusCode`, `headers`,
`content`). A 202 with a Location header is followed as the extension does (GET the Location
after Retry-After seconds, 30 by default) until another status comes back, unless the request
says `asynchronousPatternEnabled: false`. The waits happen inside the one activity, so a host
restart mid-poll starts the polling again.

Only loopback addresses are called: the local host has no managed identity to get tokens from,
and it is a development tool. Other targets, and tokenSource, fail the task with a clear reason.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from urllib.parse import urljoin, urlsplit

import aiohttp

MAX_REDIRECTS = 10
REDIRECTS = {301, 302, 303, 307, 308}
DEFAULT_RETRY_AFTER = 30.0  # the extension's DefaultAsyncRequestSleepTimeMilliseconds
# .NET puts these on the content, not on the response: DurableHttpResponse leaves them out
CONTENT_HEADERS = {
    "allow",
    "content-disposition",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "expires",
    "last-modified",
}


class HttpActivityError(Exception):
    """The request could not be made or answered: the task fails with this reason."""


def _loopback(uri: str) -> bool:
    host = urlsplit(uri).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _headers(raw: object) -> dict[str, str]:
    """Request headers as the SDK sends them: a value may be a string or a list of them."""
    if not isinstance(raw, dict):
        return {}
    return {k: ", ".join(v) if isinstance(v, list) else str(v) for k, v in raw.items()}


def _response_headers(response: aiohttp.ClientResponse) -> dict[str, str | list[str]]:
    found: dict[str, list[str]] = {}
    for key, value in response.headers.items():
        if key.lower() not in CONTENT_HEADERS:
            found.setdefault(key, []).append(value)
    return {k: v[0] if len(v) == 1 else v for k, v in found.items()}


def _retry_after(response: aiohttp.ClientResponse) -> float:
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return DEFAULT_RETRY_AFTER


async def call(input_text: str) -> str:
    """Run the request (and its 202 polling); returns the DurableHttpResponse JSON."""
    try:
        request = json.loads(input_text)[0]
        method, uri = str(request["method"]).upper(), str(request["uri"])
    except (ValueError, KeyError, IndexError, TypeError):
        raise HttpActivityError("The HTTP request is not a valid DurableHttpRequest.") from None
    if request.get("tokenSource"):
        raise HttpActivityError("tokenSource (managed identity) is not available locally.")
    if not _loopback(uri):
        raise HttpActivityError(f"The local host only calls loopback addresses, not {uri!r}.")
    headers = _headers(request.get("headers"))
    content = request.get("content")
    if content is not None and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "text/plain; charset=utf-8"
    polling = request.get("asynchronousPatternEnabled", True) is not False
    try:
        async with aiohttp.ClientSession() as session:
            response = await _send(session, method, uri, headers, content)
            while polling and response["statusCode"] == 202 and response["location"]:
                await asyncio.sleep(response["retry_after"])
                location = urljoin(uri, response["location"])
                if not _loopback(location):
                    raise HttpActivityError(f"The 202's Location {location!r} is not loopback.")
                response = await _send(session, "GET", location, headers, None)
    except aiohttp.ClientError as error:
        raise HttpActivityError(
            f"The HTTP request failed: {type(error).__name__}: {error}"
        ) from None
    return json.dumps({k: response[k] for k in ("statusCode", "headers", "content")})


async def _send(
    session: aiohttp.ClientSession, method: str, uri: str, headers: dict, content: str | None
) -> dict:
    """One request; redirects are followed here, so that each hop is checked to be loopback."""
    for _ in range(MAX_REDIRECTS + 1):
        async with session.request(
            method, uri, headers=headers, data=content, allow_redirects=False
        ) as response:
            location = response.headers.get("Location")
            if response.status in REDIRECTS and location:
                uri = urljoin(uri, location)
                if not _loopback(uri):
                    raise HttpActivityError(f"A redirect to {uri!r} is not loopback.")
                if response.status == 303:
                    method, content = "GET", None
                continue
            return {
                "statusCode": response.status,
                "headers": _response_headers(response),
                "content": await response.text(errors="replace"),
                "location": location,
                "retry_after": _retry_after(response),
            }
    raise HttpActivityError(f"More than {MAX_REDIRECTS} redirects.")
