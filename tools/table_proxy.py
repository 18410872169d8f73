"""A throttling, record/replay proxy in front of Azurite's table endpoint.

Azurite scans its whole collection for every page, so a query's cost there grows with the
table's total size; real Table Storage serves a partition-key range from an index, bounded by
published throughput targets. This proxy answers table queries from a cache (Azurite is asked
once per distinct page) and releases each page when a virtual-time token-bucket model of those
targets says it could have been served, so benchmarks time the model, not the emulator.

python -m tools.table_proxy --upstream http://127.0.0.1:10002 --port 10012 [--cache FILE]
                            [--partition-rate 2000] [--account-rate 20000] [--latency 0.02]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import re
import signal
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from tools.azurite import ACCOUNT

# Request parameters that change between identical queries (SAS signature, expiry, ...).
VOLATILE_PARAMS = frozenset({"sig", "se", "st", "sp", "sv", "spr", "tn", "timeout"})
KEPT_HEADERS = (
    "Content-Type",
    "x-ms-continuation-NextPartitionKey",
    "x-ms-continuation-NextRowKey",
)
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",  # recomputed for the body actually sent
        "content-encoding",  # aiohttp decodes upstream bodies
    }
)
QUERY_PATH = re.compile(rf"^/{ACCOUNT}/(?P<table>[A-Za-z][A-Za-z0-9]*)\((?P<keys>.*)\)$")
LOWER_BOUND = re.compile(r"\bPartitionKey\s+(?:ge|gt|eq)\s+'(?P<key>(?:[^']|'')*)'")
UPSTREAM_TIMEOUT_S = 300.0
MAX_BODY = 32 * 2**20  # a 100-entity transaction may be 4 MiB; leave room


@dataclass(frozen=True)
class Limits:
    """Defaults from Microsoft's "Scalability and performance targets for Table storage":
    up to 2,000 entities/s for one partition; 20,000 transactions/s per account assuming 1 KiB
    entities, applied here to entities (a 1,000-entity page is one transaction, so this is the
    conservative reading). The per-request latency is an assumption, not a published figure."""

    partition_entities_per_s: float = 2000.0
    account_entities_per_s: float = 20000.0
    request_latency_s: float = 0.02


@dataclass
class _Bucket:
    free_at: float = 0.0
    busy_s: float = 0.0

    def charge(self, arrival: float, entities: int, rate: float) -> float:
        """Queue `entities` behind earlier work; return when they are done."""
        start = max(arrival, self.free_at)
        self.free_at = start + entities / rate
        self.busy_s += entities / rate
        return self.free_at


@dataclass
class RateModel:
    """Virtual-time token buckets (one per partition key, one for the account): pure and
    clock-free, so its decisions can be tested with made-up times."""

    limits: Limits = field(default_factory=Limits)
    account: _Bucket = field(default_factory=_Bucket)
    partitions: dict[str, _Bucket] = field(default_factory=dict)

    def release_at(self, arrival: float, partition: str, entities: int) -> float:
        """When a page of `entities` from `partition` arriving at `arrival` may be answered.
        An empty page still costs the request latency."""
        bucket = self.partitions.setdefault(partition, _Bucket())
        own = bucket.charge(arrival, entities, self.limits.partition_entities_per_s)
        shared = self.account.charge(arrival, entities, self.limits.account_entities_per_s)
        return max(arrival + self.limits.request_latency_s, own, shared)

    def busy(self) -> dict:
        """Total modelled busy seconds per bucket (deterministic: entities / rate)."""
        return {
            "account_busy_s": self.account.busy_s,
            "partition_busy_s": {key: b.busy_s for key, b in self.partitions.items()},
        }


def _unquote_odata(text: str) -> str:
    return text.replace("''", "'")


def decode_continuation(token: str) -> str:
    """Azurite's NextPartitionKey is the key in base64 (real Azure's token is opaque too);
    fall back to the token itself when it is not base64 of UTF-8 text."""
    try:
        return base64.b64decode(token, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return token


def starting_partition(query: Mapping[str, str]) -> str:
    """The partition a page is charged to: where it starts. A continuation starts at the
    (decoded) NextPartitionKey; a first page at the $filter's first `PartitionKey ge|gt|eq
    '...'`, else ''. Simplification: a page spanning two partitions is charged to the first
    (rare at ~2,700 entities a day-partition and 1,000 a page; responses selecting only
    identificationNumber carry no PartitionKey to split by)."""
    continuation = query.get("NextPartitionKey")
    if continuation:
        return decode_continuation(continuation)
    found = LOWER_BOUND.search(query.get("$filter", ""))
    return _unquote_odata(found["key"]) if found else ""


def is_table_query(method: str, path: str) -> bool:
    """GET /devstoreaccount1/<table>() or <table>(keys): a query or point read, not the
    Tables() listing (which changes whenever a table is created)."""
    match = QUERY_PATH.match(path)
    return method == "GET" and match is not None and match["table"].lower() != "tables"


def cache_key(path: str, query: Mapping[str, str] | list[tuple[str, str]], accept: str) -> str:
    """Path, sorted non-volatile parameters and Accept (it selects the OData metadata level,
    so it changes the body)."""
    items = query.items() if isinstance(query, Mapping) else query
    kept = sorted((k, v) for k, v in items if k not in VOLATILE_PARAMS)
    return json.dumps([path, kept, accept], separators=(",", ":"))


def count_entities(body: bytes) -> int:
    """Entities in a query response: the length of its JSON `value` list, else 0."""
    try:
        document = json.loads(body)
    except ValueError:
        return 0
    value = document.get("value") if isinstance(document, dict) else None
    return len(value) if isinstance(value, list) else 0


@dataclass(frozen=True)
class Entry:
    """One recorded answer: status, the headers a pager needs, and the body bytes."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class ProxyCache:
    """Recorded query answers in one SQLite file (or in memory when path is None), so a data
    set's warm-up pass against Azurite is paid once. Safe to share across threads."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False)
        with self._lock, self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS entries "
                "(key TEXT PRIMARY KEY, status INTEGER, headers TEXT, body BLOB)"
            )

    def get(self, key: str) -> Entry | None:
        with self._lock:
            row = self._db.execute(
                "SELECT status, headers, body FROM entries WHERE key = ?", (key,)
            ).fetchone()
        return Entry(row[0], CIMultiDict(json.loads(row[1])), bytes(row[2])) if row else None

    def put(self, key: str, entry: Entry) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?)",
                (key, entry.status, json.dumps(dict(entry.headers)), entry.body),
            )

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM entries").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _forwardable(headers: Mapping[str, str]) -> CIMultiDict[str]:
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in HOP_BY_HOP)


class TableProxy:
    """The aiohttp server: replays or records table queries and charges every page to the
    RateModel; forwards everything else to `upstream` untouched and uncached."""

    def __init__(
        self,
        upstream: str,
        limits: Limits | None = None,
        cache: ProxyCache | None = None,
        model: RateModel | None = None,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.limits = limits or Limits()
        self.cache = cache if cache is not None else ProxyCache()
        self.model = model or RateModel(self.limits)
        self._lock = threading.Lock()  # stats() may be read from another thread
        self._counts = dict.fromkeys(
            ("pages", "entities", "hits", "misses", "forwarded", "upstream_errors"), 0
        )
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on host:port (0 picks a free port); return the bound port."""
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=UPSTREAM_TIMEOUT_S),
            skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
        )
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        return self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Close the listener (in-flight requests get 2 s) and the upstream session."""
        runner, session, self._runner, self._session = self._runner, self._session, None, None
        if runner is not None:
            await runner.cleanup()
        if session is not None:
            await session.close()

    def stats(self) -> dict:
        """Counters for the benchmark report, with the model's busy time per bucket."""
        with self._lock:
            return {**self._counts, **self.model.busy(), "cached_entries": len(self.cache)}

    def _count(self, **increments: int) -> None:
        with self._lock:
            for name, amount in increments.items():
                self._counts[name] += amount

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if not is_table_query(request.method, request.path):
            self._count(forwarded=1)
            return await self._forward(request)
        return await self._query(request)

    async def _upstream(self, request: web.Request) -> Entry | None:
        """Send the request as received (minus Host and hop-by-hop headers); None if
        Azurite cannot be reached."""
        assert self._session is not None, "start() first"
        url = URL(self.upstream + request.raw_path, encoded=True)
        body = await request.read()
        try:
            async with self._session.request(
                request.method, url, headers=_forwardable(request.headers), data=body or None
            ) as response:
                payload = await response.read()
                return Entry(response.status, _forwardable(response.headers), payload)
        except (aiohttp.ClientError, TimeoutError):
            self._count(upstream_errors=1)
            return None

    async def _forward(self, request: web.Request) -> web.Response:
        entry = await self._upstream(request)
        if entry is None:
            return web.Response(status=502, text="upstream unreachable")
        return web.Response(status=entry.status, headers=entry.headers, body=entry.body)

    async def _query(self, request: web.Request) -> web.Response:
        """Replay or record one page, then hold it until the model releases it."""
        loop = asyncio.get_running_loop()
        key = cache_key(
            request.path, list(request.query.items()), request.headers.get("Accept", "")
        )
        entry = self.cache.get(key)
        if entry is not None:
            self._count(hits=1)
        else:
            entry = await self._record(request, key)
            if entry is None:
                return web.Response(status=502, text="upstream unreachable")
        # a miss arrives when Azurite answered: warm-up is slow, but never cheaper than a hit
        arrival = loop.time()
        entities = count_entities(entry.body)
        with self._lock:
            release = self.model.release_at(arrival, starting_partition(request.query), entities)
        self._count(pages=1, entities=entities)
        delay = release - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        return web.Response(status=entry.status, headers=entry.headers, body=entry.body)

    async def _record(self, request: web.Request, key: str) -> Entry | None:
        """Ask Azurite; keep only successful answers (an error may be transient)."""
        answer = await self._upstream(request)
        if answer is None:
            return None
        self._count(misses=1)
        # Azurite sends header names in lower case: look them up case-insensitively
        kept = CIMultiDict((k, answer.headers[k]) for k in KEPT_HEADERS if k in answer.headers)
        entry = Entry(answer.status, kept, answer.body)
        if answer.status == 200:
            self.cache.put(key, entry)
        return entry


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        loop.close()


def run_in_thread(
    proxy: TableProxy, port: int = 0, timeout: float = 30.0
) -> tuple[int, Callable[[], None]]:
    """Serve `proxy` on 127.0.0.1 from its own event loop in a daemon thread, for synchronous
    callers; return the bound port and an idempotent stop() (every wait bounded)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=_run_loop, args=(loop,), name="table-proxy", daemon=True)
    thread.start()
    stopped = threading.Event()

    def stop() -> None:
        if stopped.is_set():
            return
        stopped.set()
        with contextlib.suppress(TimeoutError, RuntimeError):
            asyncio.run_coroutine_threadsafe(proxy.stop(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)

    try:
        bound = asyncio.run_coroutine_threadsafe(proxy.start(port=port), loop).result(timeout)
    except BaseException:
        stop()
        raise
    return bound, stop


@contextlib.contextmanager
def serving(
    upstream: str, limits: Limits | None = None, cache: ProxyCache | None = None, port: int = 0
) -> Iterator[int]:
    """`with serving(upstream, limits, cache) as port:` a proxy for the block's duration."""
    bound, stop = run_in_thread(TableProxy(upstream, limits, cache), port)
    try:
        yield bound
    finally:
        stop()


def proxied_connection_string(connection_string: str, port: int) -> str:
    """The same connection string with TableEndpoint pointed at the proxy on loopback."""
    endpoint = f"TableEndpoint=http://127.0.0.1:{port}/{ACCOUNT}"
    parts = [p for p in connection_string.split(";") if p]
    replaced = [endpoint if p.split("=", 1)[0] == "TableEndpoint" else p for p in parts]
    if endpoint not in replaced:
        replaced.append(endpoint)
    return ";".join(replaced) + ";"


async def _serve(args: argparse.Namespace) -> None:
    limits = Limits(args.partition_rate, args.account_rate, args.latency)
    proxy = TableProxy(args.upstream, limits, ProxyCache(args.cache))
    port = await proxy.start(port=args.port)
    print(f"table proxy on http://127.0.0.1:{port}/{ACCOUNT} -> {args.upstream}", flush=True)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, done.set)
    try:
        await done.wait()  # until Ctrl-C or SIGTERM: a server has no natural deadline
    finally:
        await proxy.stop()
        print(json.dumps(proxy.stats(), indent=2), flush=True)
        proxy.cache.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--upstream", default="http://127.0.0.1:10002")
    parser.add_argument("--port", type=int, default=10012)
    parser.add_argument("--cache", type=Path, help="SQLite file of recorded pages (else memory)")
    parser.add_argument("--partition-rate", type=float, default=Limits.partition_entities_per_s)
    parser.add_argument("--account-rate", type=float, default=Limits.account_entities_per_s)
    parser.add_argument("--latency", type=float, default=Limits.request_latency_s)
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
