"""Import entry points as the Python worker does and call them with converted bindings.

The app root goes on sys.path and a namespace package `__app__` points at it, so
`client-function/__init__.py` is module `__app__.client-function` and `from shared import x`
works. Sync functions run in a thread pool, async ones on the event loop.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import sys
import types
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from devhost.errors import AppLoadError, FunctionLoadError, FunctionTimeoutError
from devhost.functions.bindings import durable_input, durable_output
from devhost.functions.catalog import FunctionSpec

log = logging.getLogger("devhost.invoker")


def _install_app_package(app_dir: Path) -> None:
    root = str(app_dir.resolve())
    site_packages = str(Path(root, ".python_packages", "lib", "site-packages"))
    for path in (site_packages, root):
        if path not in sys.path:
            sys.path.insert(0 if path == site_packages else len(sys.path), path)
    package = sys.modules.get("__app__")
    if package is None:
        package = types.ModuleType("__app__")
        package.__path__ = []  # type: ignore[attr-defined]
        sys.modules["__app__"] = package
    if root not in package.__path__:  # type: ignore[attr-defined]
        package.__path__.append(root)  # type: ignore[attr-defined]


def _check_signature(spec: FunctionSpec, entry: Callable) -> None:
    params = {
        n
        for n, p in inspect.signature(entry).parameters.items()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    names = {b["name"] for b in spec.bindings if b["name"] != "$return"}
    missing = names - params
    extra = params - names - {"context"}
    if missing:
        raise AppLoadError(
            f"{spec.name}: entry point {spec.entry_point}() has no parameter for binding(s) "
            f"{', '.join(sorted(missing))}"
        )
    if extra:
        raise AppLoadError(
            f"{spec.name}: parameter(s) {', '.join(sorted(extra))} of {spec.entry_point}() "
            "match no binding"
        )


def load_entry(spec: FunctionSpec, app_dir: Path) -> Callable:
    _install_app_package(app_dir)
    try:
        module = importlib.import_module(spec.module_name)
    except Exception as error:  # noqa: BLE001 - any import failure makes the app unusable
        raise AppLoadError(f"{spec.name}: import failed: {type(error).__name__}: {error}") from None
    entry = getattr(module, spec.entry_point, None)
    if not callable(entry):
        raise AppLoadError(f"{spec.name}: no callable '{spec.entry_point}' in {spec.script_file}")
    _check_signature(spec, entry)
    return entry


class Invoker:
    """Calls loaded functions; the engine and the HTTP front both go through it."""

    def __init__(
        self,
        functions: dict[str, FunctionSpec],
        app_dir: Path,
        threads: int,
        remote: Any = None,
        timeout: float = 1800,
    ) -> None:
        self.functions = functions
        self.entries: dict[str, Callable] = {}
        self.load_errors: dict[str, str] = {}  # as the worker's: listed, and every call fails
        for name, spec in functions.items():
            try:
                self.entries[name] = load_entry(spec, app_dir)
            except AppLoadError as error:
                self.load_errors[name] = str(error)
        self.threads = threads
        # HTTP and timer functions; durable ones apart, so neither kind can starve the other
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fn")
        self.durable_pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="durable")
        self.remote = remote  # worker processes (devhost.functions.workers), if any
        self.timeout = timeout  # host.json functionTimeout

    def names(self, kind: str) -> set[str]:
        return {n for n, s in self.functions.items() if s.kind == kind}

    def entry(self, name: str) -> Callable:
        """The loaded entry point; a function that failed to load fails every call."""
        if name in self.load_errors:
            raise FunctionLoadError(name, self.load_errors[name])
        return self.entries[name]

    async def call(self, name: str, kwargs: dict, pool: ThreadPoolExecutor | None = None) -> Any:
        entry = self.entry(name)
        if inspect.iscoroutinefunction(entry):
            return await entry(**kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool or self.pool, lambda: entry(**kwargs))

    async def call_within(
        self, name: str, kwargs: dict, timeout: float, durable: bool = False
    ) -> Any:
        """Call with functionTimeout. A sync function's thread cannot be stopped, only
        abandoned, so the pool it ran in is replaced, as Azure recycles a worker: otherwise
        enough hung calls would hold every thread and starve every later call."""
        pool = self.durable_pool if durable else self.pool
        task = asyncio.ensure_future(self.call(name, kwargs, pool))
        try:
            done, _ = await asyncio.wait({task}, timeout=timeout)
        except asyncio.CancelledError:  # the caller gave up: so does an async function
            task.cancel()
            raise
        if not done:  # the function's own TimeoutError would be in a done task instead
            task.cancel()
            if not inspect.iscoroutinefunction(self.entry(name)):
                self._replace_pool(pool, name)
            raise FunctionTimeoutError(name, timeout)
        return task.result()

    def _replace_pool(self, hung: ThreadPoolExecutor, name: str) -> None:
        """Later calls get a fresh pool; the old one ends with its calls (its queued calls
        time out with their callers). Once per pool, however many of its calls time out."""
        if hung is self.pool:
            self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="fn")
        elif hung is self.durable_pool:
            self.durable_pool = ThreadPoolExecutor(self.threads, thread_name_prefix="durable")
        else:
            return
        log.warning("%s ran past functionTimeout: its thread is abandoned, the pool replaced", name)
        hung.shutdown(wait=False)

    async def _durable(self, name: str, payload: str) -> str:
        """Worker processes, when there are any, take sync durable functions; async ones and
        everything else run here. Either way functionTimeout applies (a worker process is
        recycled, a pool here replaced). The payload is converted where the function runs,
        as the worker converts it."""
        kind = self.functions[name].kind
        if self.remote is not None and not inspect.iscoroutinefunction(self.entry(name)):
            return await self.remote.call(name, payload, self.timeout)
        kwargs = {self.functions[name].trigger["name"]: durable_input(kind, payload)}
        result = await self.call_within(name, kwargs, self.timeout, durable=True)
        return durable_output(kind, result)

    async def orchestrate(self, name: str, payload: str) -> str:
        """Run one orchestrator episode; the SDK's exception carries its state (see actions)."""
        return await self._durable(name, payload)

    async def entity(self, name: str, payload: str) -> str:
        """Run one batch of an entity's operations (the SDK's Entity.create protocol)."""
        return await self._durable(name, payload)

    async def activity(self, name: str, input_text: str | None) -> str:
        """Run an activity: its input and its result are JSON text."""
        return await self._durable(name, "null" if input_text is None else input_text)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.durable_pool.shutdown(wait=False, cancel_futures=True)
        if self.remote is not None:
            self.remote.close()
