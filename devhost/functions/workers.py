"""Worker processes for durable functions, like FUNCTIONS_WORKER_PROCESS_COUNT in Azure.

Orchestrator episodes and sync activities take and return JSON, so they can run in another
process and use another core, while the host process keeps HTTP and the engine. Each worker
imports the app itself and runs calls in a thread pool of its own (as the Python worker does);
calls and results cross a pipe. A worker exits when its pipe closes, so a killed host leaves
no orphan behind.

The pool supervises them as the Functions host does its language workers: a worker that dies is
reaped and replaced at once, and the calls it held fail with WorkerLostError, which the engine
runs again rather than recording as the function's failure. A call that outlives
functionTimeout gets the worker killed and replaced (a thread cannot be stopped), and fails
with FunctionTimeoutError.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import count
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from devhost.errors import AppLoadError, FunctionTimeoutError, WorkerLostError
from devhost.functions.bindings import durable_input, durable_output
from devhost.functions.catalog import load_catalog
from devhost.functions.invoker import load_entry

LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"
log = logging.getLogger("devhost.workers")


class RemoteTracebackError(Exception):
    """The traceback of a call that failed in a worker, chained as the cause of its error."""


def _answer(connection: Connection, lock: threading.Lock, call_id: int, run: Callable) -> None:
    try:
        reply = (call_id, True, run())
    except Exception as error:  # noqa: BLE001 - the host decides what a failure means
        reply = (call_id, False, (error, traceback.format_exc()))
    with lock:
        try:
            connection.send(reply)
        except Exception:  # noqa: BLE001 - an unpicklable error: send its text instead
            error, trace = reply[2]
            connection.send(
                (call_id, False, (RuntimeError(f"{type(error).__name__}: {error}"), trace))
            )


def serve(connection: Connection, app_dir: str, threads: int, level: int) -> None:
    """A worker's main: import the app, then run calls until the host goes away."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
    logging.getLogger("azure").setLevel(logging.WARNING)
    _, functions, _ = load_catalog(Path(app_dir))
    entries = {}
    for name, spec in functions.items():
        if spec.kind in ("activity", "orchestrator", "entity"):
            with contextlib.suppress(AppLoadError):  # the host knows; it never sends those
                entries[name] = (load_entry(spec, Path(app_dir)), spec.trigger["name"], spec.kind)
    lock = threading.Lock()
    with ThreadPoolExecutor(threads, thread_name_prefix="fn") as pool:
        while True:
            try:
                call_id, name, payload = connection.recv()
            except (EOFError, OSError):
                return  # the host is gone
            entry, parameter, kind = entries[name]
            pool.submit(
                _answer,
                connection,
                lock,
                call_id,
                lambda e=entry, p=parameter, k=kind, v=payload: durable_output(
                    k, e(**{p: durable_input(k, v)})
                ),
            )


class Worker:
    """The host's side of one worker process."""

    def __init__(self, app_dir: Path, threads: int, on_exit: Callable[[], None]) -> None:
        context = multiprocessing.get_context("spawn")  # no fork of a threaded event loop
        self.connection, child = context.Pipe()
        self.process = context.Process(
            target=serve,
            args=(child, str(app_dir), threads, logging.getLogger().level),
            daemon=True,
            name="devhost-worker",
        )
        self.process.start()
        child.close()
        self.alive = True
        self._reported = False
        self.pending: dict[int, asyncio.Future] = {}
        self.ids = count()
        self.send_lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._exited = False
        self._loop_lock = threading.Lock()  # the reader and attach() agree on who reports
        self._on_exit = on_exit
        threading.Thread(target=self._read, daemon=True, name="worker-reader").start()

    def _read(self) -> None:
        while True:
            try:
                call_id, ok, value = self.connection.recv()
            except (EOFError, OSError):
                break
            if self.loop is not None:
                self.loop.call_soon_threadsafe(self._settle, call_id, ok, value)
        with self._loop_lock:
            self._exited = True
            loop = self.loop
        if loop is None:  # before the host's loop runs: attach() reports it
            self.alive = False
        else:  # exited: fail its calls, and the pool replaces it
            self._report_on(loop)

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """The host's loop, where the exit is reported: from the start, not from the first
        call, so a worker that dies before any call is replaced at once too."""
        with self._loop_lock:
            self.loop = loop
            exited = self._exited
        if exited:
            self._report_on(loop)

    def _report_on(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            loop.call_soon_threadsafe(self._lost)
        except RuntimeError:  # the loop is closed: the host is leaving
            self.alive = False

    def _lost(self) -> None:
        """The process is gone: fail the calls it held and have the pool replace it, once."""
        if self._reported:
            return
        self._reported = True
        self.alive = False
        for call_id in list(self.pending):
            self._settle(call_id, False, (WorkerLostError("the worker process exited"), ""))
        self._on_exit()

    def _settle(self, call_id: int, ok: bool, value: Any) -> None:
        future = self.pending.pop(call_id, None)
        if future is None or future.done():
            return
        if ok:
            future.set_result(value)
        else:
            error, trace = value
            error.__cause__ = RemoteTracebackError(trace) if trace else None
            future.set_exception(error)

    def _send(self, message: tuple) -> None:
        with self.send_lock:
            self.connection.send(message)

    async def call(self, name: str, payload: str, timeout: float) -> str:
        if self.loop is None:
            self.attach(asyncio.get_running_loop())
        if not self.alive:
            raise WorkerLostError("the worker process exited")
        call_id = next(self.ids)
        future = self.loop.create_future()
        self.pending[call_id] = future
        try:
            await self.loop.run_in_executor(None, self._send, (call_id, name, payload))
        except OSError:  # a broken pipe: the worker is gone (or useless: make sure)
            self.pending.pop(call_id, None)
            self.kill()
            self._lost()
            raise WorkerLostError("the worker process exited") from None
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            self.pending.pop(call_id, None)
            log.error("%s ran past functionTimeout: recycling worker %s", name, self.process.pid)
            self.alive = False  # no new call goes here while it is being replaced
            self.kill()
            raise FunctionTimeoutError(name, timeout) from None

    def kill(self) -> None:
        """Stop the process now and reap it (no zombie); its reader reports the exit."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)

    def close(self) -> None:
        """SIGTERM, not the pipe: its reader thread holds the pipe open while blocked on it."""
        self.alive = False
        if self.process.is_alive():
            self.process.terminate()


class WorkerPool:
    """Calls go to the live worker with the fewest calls in flight; dead ones are replaced."""

    def __init__(self, app_dir: Path, processes: int, threads: int) -> None:
        self.app_dir, self.threads = app_dir, threads
        self.closed = False
        self.replaced = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.workers = [self._start() for _ in range(processes)]

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Supervise from the host's loop as soon as it runs (the workers start before it)."""
        self.loop = loop
        for worker in self.workers:
            worker.attach(loop)

    def _start(self) -> Worker:
        worker = Worker(self.app_dir, self.threads, self._replace_dead)
        if self.loop is not None:
            worker.attach(self.loop)
        return worker

    def _replace_dead(self) -> None:
        if self.closed:
            return
        for index, worker in enumerate(self.workers):
            if not worker.alive:
                worker.kill()  # reap
                log.warning(
                    "worker process %s exited (code %s); starting another",
                    worker.process.pid,
                    worker.process.exitcode,
                )
                self.workers[index] = self._start()
                self.replaced += 1

    async def call(self, name: str, payload: str, timeout: float) -> str:
        if self.loop is None:
            self.attach(asyncio.get_running_loop())
        if not all(w.alive for w in self.workers):
            self._replace_dead()
        live = [w for w in self.workers if w.alive] or self.workers
        worker = min(live, key=lambda w: len(w.pending))
        return await worker.call(name, payload, timeout)

    def close(self) -> None:
        """Stop every worker at once, then reap them (2 s each at most, in parallel)."""
        self.closed = True
        for worker in self.workers:
            worker.close()
        for worker in self.workers:
            worker.process.join(timeout=2)
            worker.kill()
            worker.connection.close()
