"""The listeners' guard: a connection cap, header and idle deadlines, quiet 400s.

Both listeners use it: the public one and the loopback RPC one the Durable SDK calls (which
needs no key, so it is no less exposed).

Measured without it: 1,100 idle connections (file limit 1,024) left ping, submit and status
timing out and filled the log with 124 MB of accept() tracebacks in 35 s; a malformed request
logged a traceback holding its raw request line, so `?code=KEY` reached the log. Here:
- at most `max_connections` are open: a new one takes the place of an idle keep-alive
  connection, or is closed at once when every one is busy (no file-descriptor storm);
- a request's headers must arrive within `header_timeout` of its first byte, and a keep-alive
  connection may idle `idle_timeout` between requests (aiohttp's keep-alive timer);
- a request aiohttp cannot parse gets `400 {"error": "Bad request."}` and one log line naming
  the peer and the error's class, never the request line, headers or query.
aiohttp has no hook for these, so this subclasses its Server and RequestHandler (aiohttp is
pinned; tests/test_hostile_input.py drives every case over raw sockets).
"""

from __future__ import annotations

import asyncio
import logging
import resource
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger("devhost.http")
BAD_REQUEST = '{"error": "Bad request."}'


@dataclass(frozen=True)
class ListenerLimits:
    max_connections: int = 512
    header_timeout: float = 10.0
    idle_timeout: float = 30.0


def raise_file_limit() -> int:
    """Lift the soft open-file limit to the hard one, as servers do; returns the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


class GuardedRequestHandler(RequestHandler):
    """aiohttp's handler with a header deadline, the cap, and a quiet error path."""

    def __init__(self, manager: GuardedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = manager
        self._header_deadline: asyncio.TimerHandle | None = None
        self._seen_requests = 0
        self._received = False  # any byte yet
        self._evicted = False  # closed to make room (it stays listed until it is gone)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if len(self._guard.connections) > self._guard.limits.max_connections:
            idle = next((h for h in self._guard.connections if h is not self and h.idle), None)
            victim = idle or self
            victim._evicted = True
            if idle is None:
                self._guard.refused += 1
            else:
                self._guard.evicted += 1
            victim.force_close()
            if victim.transport is not None:
                victim.transport.close()

    @property
    def _waiting_for_request(self) -> bool:
        """aiohttp waits on `_waiter` only between requests, never while one is handled or
        its response written."""
        return self._waiter is not None and not self._waiter.done() and not self._messages

    @property
    def idle(self) -> bool:
        """A connection that can go: it never sent a byte (aiohttp may not even have started
        reading it), or a keep-alive one between requests with nothing received."""
        if self._evicted:
            return False
        return not self._received or (self._waiting_for_request and self._header_deadline is None)

    def data_received(self, data: bytes) -> None:
        self._received = self._received or bool(data)
        super().data_received(data)
        if self._request_count > self._seen_requests:  # headers complete: the handler runs
            self._seen_requests = self._request_count
            self._cancel_deadline()
        elif self._header_deadline is None and data and self._waiting_for_request:
            self._header_deadline = self._loop.call_later(
                self._guard.limits.header_timeout, self._headers_too_slow
            )

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _cancel_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        self._guard.slow += 1
        self.force_close()
        if self.transport is not None:
            self.transport.close()

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """One line without the request's text, and a JSON body without it either."""
        peer = request.remote if request is not None else "?"
        if status < 500:
            log.warning("malformed request from %s: %s", peer, type(exc).__name__)
            response = web.Response(status=400, text=BAD_REQUEST, content_type="application/json")
        else:
            log.error("request from %s failed in the server: %s", peer, type(exc).__name__)
            response = web.Response(
                status=500,
                text='{"error": "Internal server error."}',
                content_type="application/json",
            )
        response.force_close()
        return response


class GuardedServer(web.Server):
    """Makes GuardedRequestHandlers; counts what the guard refused, for the tests and logs."""

    def __init__(self, *args: Any, limits: ListenerLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.refused = self.evicted = self.slow = 0

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, **self._kwargs)


class GuardedAppRunner(web.AppRunner):
    """An AppRunner whose server is a GuardedServer, with the idle timeout as keep-alive."""

    def __init__(self, app: web.Application, limits: ListenerLimits, **kwargs: Any) -> None:
        super().__init__(app, keepalive_timeout=limits.idle_timeout, **kwargs)
        self.limits = limits

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        return GuardedServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            loop=plain._loop,  # aiohttp offers no public way to swap the handler class
            limits=self.limits,
            **plain._kwargs,
        )
