"""A fault-injecting HTTP proxy for Azurite: 503s, 500s, dropped connections, slow answers.

Runs in a thread with its own event loop on a free loopback port; the share of each fault and
the random seed are fixed, so a failing run can be replayed.
"""

from __future__ import annotations

import asyncio
import random
import socket
import threading
from collections import Counter

import aiohttp
from aiohttp import web

from tools.azurite import free_port

HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


class FaultyProxy:
    def __init__(
        self, upstream_port: int, shares: dict[str, float], seed: int = 1, delay: float = 0.5
    ) -> None:
        self.upstream = f"http://127.0.0.1:{upstream_port}"
        self.shares, self.delay = shares, delay
        self.rng = random.Random(seed)
        self.port = free_port()
        self.seen: Counter[str] = Counter()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _fault(self) -> str:
        roll = self.rng.random()
        for fault, share in self.shares.items():
            if roll < share:
                return fault
            roll -= share
        return "pass"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        fault = self._fault()
        self.seen[fault] += 1
        if fault == "503":
            return web.json_response({"odata.error": {"code": "ServerBusy"}}, status=503)
        if fault == "500":
            return web.json_response({"odata.error": {"code": "InternalError"}}, status=500)
        if fault == "drop":
            request.transport.close()  # the client sees the connection die mid-request
            return web.Response(status=500)
        if fault == "slow":
            await asyncio.sleep(self.delay)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        body = await request.read()
        async with self._session.request(  # forwarded as sent: the request is signed
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            data=body or None,
            skip_auto_headers=["Content-Type", "User-Agent"],
        ) as upstream:
            answer = await upstream.read()
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS}
            return web.Response(status=upstream.status, headers=out, body=answer)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            self._session = aiohttp.ClientSession()
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()

    def start(self) -> FaultyProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise TimeoutError("the fault proxy did not start")
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            await self._runner.cleanup()
            await self._session.close()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


class SilentServer:
    """Accepts connections and never answers: a hung storage endpoint."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        for _ in range(1000):  # bounded: a test opens a handful
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return  # closed
            self.accepted.append(connection)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.socket.close()
        for connection in self.accepted:
            connection.close()
        self._thread.join(timeout=5)
