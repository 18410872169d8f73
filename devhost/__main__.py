"""python -m devhost --app PATH [--host 127.0.0.1] [--port 7071] [--data DIR]

Wires the parts together: catalog -> invoker -> store -> engine -> HTTP front.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from aiohttp import web

from devhost.config import HostConfig, build_config, load_local_settings, local_http_port
from devhost.durable.client_binding import client_binding, instance_links, management_urls
from devhost.durable.engine import Engine
from devhost.errors import AppLoadError, StoreError
from devhost.functions.catalog import load_catalog
from devhost.functions.invoker import Invoker
from devhost.functions.timers import TimerRunner
from devhost.functions.workers import WorkerPool
from devhost.http.app import describe_functions, public_app, rpc_app
from devhost.http.listener import GuardedAppRunner, ListenerLimits, raise_file_limit
from devhost.http.management import ManagementApi
from devhost.http.triggers import TriggerHandler
from devhost.store.lock import DataFolderLock
from devhost.store.sqlite import Store

MAX_BODY = 1024 * 1024
SHUTDOWN_BUDGET = 10.0  # seconds for in-flight work once SIGTERM arrives; then the host exits
log = logging.getLogger("devhost")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devhost", description=__doc__.split("\n")[2])
    parser.add_argument("--app", required=True, type=Path, help="the Functions app directory")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port", type=int, help="default: local.settings.json Host.LocalHttpPort, else 7071"
    )
    parser.add_argument("--data", type=Path, help="state folder (default: APP/.devhost)")
    return parser.parse_args(argv)


def key_lines(config: HostConfig) -> list[str]:
    """KEY=... ready to export, with where it came from; a configured key is never echoed."""
    lines = []
    for name, variable, key, origin in (
        ("KEY", "DEVHOST_FUNCTION_KEY", config.function_key, config.function_key_origin),
        ("SYSTEM_KEY", "DEVHOST_SYSTEM_KEY", config.system_key, config.system_key_origin),
    ):
        label = "the function key" if name == "KEY" else "the system key"
        if origin:
            lines.append(f"  {name}={key}   # {label}, {origin}")
        else:
            lines.append(f"  {label}: from {variable} (not shown)")
    return lines


async def serve(
    config: HostConfig,
    invoker: Invoker,
    store: Store,
    stop: asyncio.Event,
    in_error: dict[str, str],
) -> None:
    engine = Engine(store, invoker, config.max_activities, config.max_orchestrators)
    urls = management_urls(config.public_base, config.hub_name, config.system_key)
    api = ManagementApi(engine, lambda instance_id: instance_links(urls, instance_id))
    # both listeners get the same guard: the RPC port needs no key and is as reachable
    limits = ListenerLimits(config.max_connections, config.header_timeout, config.idle_timeout)
    rpc_runner = GuardedAppRunner(rpc_app(api), limits, access_log=None, shutdown_timeout=2)
    await rpc_runner.setup()
    rpc_site = web.TCPSite(rpc_runner, "127.0.0.1", 0)
    await rpc_site.start()
    rpc_port = rpc_site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    log.debug("the Durable SDK's RPC endpoint: http://127.0.0.1:%d/durabletask/", rpc_port)
    binding = client_binding(
        config.public_base,
        f"http://127.0.0.1:{rpc_port}/durabletask/",
        config.hub_name,
        config.system_key,
    )
    handlers = [
        TriggerHandler(spec, invoker, config.function_timeout, lambda: binding)
        for spec in invoker.functions.values()
        if spec.kind == "http"
    ]
    runner = GuardedAppRunner(
        public_app(config, handlers, api, MAX_BODY), limits, access_log=None, shutdown_timeout=2
    )
    await runner.setup()
    await web.TCPSite(runner, config.host, config.port).start()
    timers = TimerRunner(
        [spec for spec in invoker.functions.values() if spec.kind == "timer"],
        invoker,
        store,
        config.function_timeout,
        lambda: binding,
    )
    engine_task = asyncio.ensure_future(engine.run())
    timer_task = asyncio.ensure_future(timers.run())
    print(
        "\n".join(
            [
                f"devhost ready on {config.public_base} (app: {config.app_dir.name}, "
                f"hub: {config.hub_name})",
                *key_lines(config),
                "Functions:",
                *describe_functions(config, invoker, handlers, in_error),
            ]
        ),
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        timers.stop()
        try:
            await asyncio.wait_for(engine.stop(), SHUTDOWN_BUDGET)
        except TimeoutError:  # an OSError too: must not read as "cannot listen" below
            log.warning("in-flight work did not stop within %.0f s; leaving it", SHUTDOWN_BUDGET)
        engine_task.cancel()
        timer_task.cancel()
        await asyncio.gather(engine_task, timer_task, return_exceptions=True)
        # together: each waits up to its shutdown_timeout (2 s) for requests still in flight
        await asyncio.gather(runner.cleanup(), rpc_runner.cleanup())


def open_state(config: HostConfig) -> tuple[DataFolderLock, Store]:
    """The data folder's lock, then its store: refused with one line if either is unusable."""
    try:
        config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = DataFolderLock(config.data_dir).acquire()
    except OSError as error:
        raise StoreError(f"cannot use {config.data_dir}: {error.strerror}") from None
    try:
        return lock, Store(config.data_dir / f"{config.hub_name}.sqlite")
    except StoreError:
        lock.release()
        raise


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    logging.getLogger("azure").setLevel(logging.WARNING)
    app_dir = args.app.resolve()
    try:
        host_section = load_local_settings(app_dir)  # first: schedules may name app settings
        host_json, functions, in_error = load_catalog(app_dir)
        config = build_config(
            app_dir,
            host_json,
            (args.data or app_dir / ".devhost").resolve(),
            args.host,
            local_http_port(host_section, args.port),
            host_section,
        )
        lock, store = open_state(config)
    except (AppLoadError, StoreError) as error:
        print(f"devhost: {error}", file=sys.stderr)
        return 2
    raise_file_limit()
    code = 0
    # every function is imported here, as the worker does at start; one that fails stays
    # listed and fails when called, one whose function.json is unusable is not served
    invoker = Invoker(
        functions, app_dir, threads=config.max_activities + 8, timeout=config.function_timeout
    )
    for name, problem in sorted({**in_error, **invoker.load_errors}.items()):
        log.error("The '%s' function is in error: %s", name, problem)
    if config.worker_processes > 1:  # the host process counts as the first worker
        invoker.remote = WorkerPool(app_dir, config.worker_processes - 1, config.max_activities)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if invoker.remote is not None:  # a worker that dies from now on is replaced at once
            invoker.remote.attach(loop)
        await serve(config, invoker, store, stop, in_error)

    try:
        asyncio.run(run())
    except OSError as error:
        print(f"devhost: cannot listen on {config.host}:{config.port}: {error}", file=sys.stderr)
        code = 1
    except BaseException:  # say what broke, then still leave below
        log.exception("the host stopped on an error")
        code = 1
    finally:
        invoker.close()
        store.close()
        lock.release()
        # A function still running in a thread of this process cannot be stopped, and the
        # interpreter would wait for it at exit: everything is closed and saved, so leave now.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
