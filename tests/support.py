"""Test helpers: a local host in a subprocess, and polling with deadlines (never bare sleeps)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from shared.orchestration import days_per_activity
from shared.partitions import key_ranges
from shared.range_results import CONTAINER
from shared.settings import Settings
from tests.contract import assert_matches
from tools.azurite import free_port

ROOT = Path(__file__).resolve().parent.parent
FUNCTION_KEY = "test-function-key"
SYSTEM_KEY = "test-system-key"


def poll(check: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = "") -> Any:
    """Call check() until it returns something truthy; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        time.sleep(interval)


class HostProcess:
    """`python -m devhost` on a free loopback port; stopped by its process id."""

    def __init__(self, app: Path, data: Path, port: int, env: dict[str, str]) -> None:
        self.app, self.data, self.port, self.env = app, data, port, env
        self.process: subprocess.Popen | None = None
        self.log = data / "host.log"
        self.key = env.get("DEVHOST_FUNCTION_KEY", FUNCTION_KEY)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> HostProcess:
        self.data.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "DEVHOST_FUNCTION_KEY": FUNCTION_KEY,
            "DEVHOST_SYSTEM_KEY": SYSTEM_KEY,
            "JOB_RETENTION_SCHEDULE": "0 0 3 * * *",  # as infra/ sets it
            **self.env,
        }
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "devhost",
                    "--app",
                    str(self.app),
                    "--port",
                    str(self.port),
                    "--data",
                    str(self.data),
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        poll(self._ready, timeout, what=f"devhost on port {self.port}")
        return self

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"devhost exited early:\n{self.log.read_text()[-3000:]}")
        try:
            return requests.get(f"{self.base}/admin/host/ping", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    def children(self) -> list[int]:
        """Process ids of the host's worker processes."""
        if self.process is None:
            return []
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                found.append(int(stat.parent.name))
        return found

    def workers(self) -> list[int]:
        """The worker processes among the children (not multiprocessing's resource tracker)."""
        found = []
        for pid in self.children():
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in command:
                found.append(pid)
        return found

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, sig)
            self.process.wait(timeout=30)
        self.process = None

    def get(self, path: str, key: str | None = "", **kwargs: Any) -> requests.Response:
        """GET with the host's function key; key=None sends none, key="x" sends that one."""
        return self.request("GET", path, key, **kwargs)

    def request(
        self, method: str, path: str, key: str | None = "", **kwargs: Any
    ) -> requests.Response:
        key = self.key if key == "" else key
        headers = {"x-functions-key": key} if key else {}
        headers.update(kwargs.pop("headers", {}))
        return requests.request(method, self.base + path, headers=headers, timeout=10, **kwargs)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def rpc_port(self) -> int:
        """The loopback port the Durable SDK calls (rpcBaseUrl): a free port chosen at each
        start, found as the host process's other listening socket (/proc: its socket inodes)."""
        assert self.process is not None
        inodes = set()
        for fd in Path(f"/proc/{self.process.pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except FileNotFoundError:  # closed meanwhile
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
        sockets = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
        ports = {int(f[1].split(":")[1], 16) for f in sockets if f[3] == "0A" and f[9] in inodes}
        (rpc,) = ports - {self.port}  # 0A: LISTEN
        return rpc


@contextmanager
def hosted(app: Path, data: Path, env: dict[str, str]) -> Iterator[HostProcess]:
    """A running local host on a free port, killed by its process id afterwards."""
    host = HostProcess(app, data, free_port(), env).start()
    try:
        yield host
    finally:
        host.kill()


def wait_done(host: HostProcess, status_path: str, timeout: float = 60) -> dict:
    """Poll the app's status endpoint until the job is no longer running."""

    def finished() -> dict | None:
        response = host.get(status_path)
        assert_matches("GET", "/status/{id}", response)
        return response.json() if response.status_code == 200 else None

    return poll(finished, timeout, interval=0.1, what=status_path)


def planned_ranges(env: dict[str, str], start: str, end: str) -> int:
    """The ranges of a job's plan, as the app makes it from the host's settings."""
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    return len(key_ranges(first, last, days_per_activity(first, last, Settings.from_env(env))))


def assert_completed_once(host: HostProcess, instance_id: str, start: str, end: str) -> None:
    """From the history: the job completed once and each task's result was recorded once: one
    per range of the job's plan, then the count and the clean-up; and the clean-up left none of
    the job's blobs (AzureWebJobsStorage, as the host was given it)."""
    ranges = planned_ranges(host.env, start, end)
    history = management_status(host, instance_id, showHistory="true").json()["historyEvents"]
    kinds = Counter(e["EventType"] for e in history)
    assert kinds["ExecutionCompleted"] == 1
    done = [e for e in history if e["EventType"] == "TaskCompleted"]
    # each completion folded into its own TaskScheduled: a second one would find none
    assert all("ScheduledTime" in e for e in done) and kinds["TaskScheduled"] == 0
    assert len(done) == ranges + 2
    blobs = BlobServiceClient.from_connection_string(host.env["AzureWebJobsStorage"])
    left = blobs.get_container_client(CONTAINER).list_blobs(name_starts_with=f"{instance_id}/")
    assert [b.name for b in left] == []


def management_status(host: HostProcess, instance_id: str, **query: str) -> requests.Response:
    params = {"code": SYSTEM_KEY, **query}
    return requests.get(
        f"{host.base}/runtime/webhooks/durabletask/instances/{instance_id}",
        params=params,
        timeout=10,
    )


def skip_or_fail(message: str) -> NoReturn:
    """A test that cannot run here skips, saying why; under CI_REQUIRES_ALL, which .ci/run and
    the pipelines set, it fails instead: there every test must run."""
    if os.environ.get("CI_REQUIRES_ALL"):
        raise AssertionError(message)
    pytest.skip(message)


def require_tool(*names: str, why: str) -> str:
    """The path of the first of `names` found; without one, skip_or_fail."""
    found = next(filter(None, map(shutil.which, names)), None)
    if found:
        return found
    skip_or_fail(f"{' or '.join(names)} is not installed ({why})")


def suspended_job(app: HostProcess, key: str = "") -> tuple[str, str]:
    """A job of the app held still (suspended through the management API), so it surely runs
    until it is canceled or resumed; a job that finished before it could be held is replaced
    (bounded). With `key`, try n submits with the Idempotency-Key `key-n`. Returns the job and
    the key it was submitted with ("" without `key`)."""
    for attempt in range(5):
        used = f"{key}-{attempt}" if key else ""
        headers = {"Idempotency-Key": used} if used else {}
        job = app.get("/api/submit/query?s=2021-10-01&e=2021-10-20", headers=headers).json()["id"]
        url = f"{app.base}/runtime/webhooks/durabletask/instances/{job}"
        requests.post(f"{url}/suspend", params={"code": SYSTEM_KEY}, timeout=10)

        def settled(url: str = url) -> str | None:
            status = requests.get(url, params={"code": SYSTEM_KEY}, timeout=10).json()
            return status["runtimeStatus"] if status["runtimeStatus"] != "Running" else None

        if poll(settled, 10, what="the job held or done") == "Suspended":
            return job, used
    raise AssertionError("every job finished before it could be held")


def resume(app: HostProcess, job: str) -> None:
    url = f"{app.base}/runtime/webhooks/durabletask/instances/{job}/resume"
    assert requests.post(url, params={"code": SYSTEM_KEY}, timeout=10).status_code == 202
