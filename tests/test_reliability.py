"""Faults and load against the local host and Azurite: nothing lost, nothing done twice.

The long variants (marker `slow`) run with `pytest -m slow`; CI runs the short ones.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date
from functools import partial
from pathlib import Path

import aiohttp
import pytest
import requests

from tests.conftest import SEED
from tests.faults import FaultyProxy
from tests.support import (
    FUNCTION_KEY,
    ROOT,
    SYSTEM_KEY,
    HostProcess,
    assert_completed_once,
    management_status,
    poll,
    require_tool,
    skip_or_fail,
    wait_done,
)
from tools.azurite import Azurite, connection_string, free_port
from tools.seed import expected_count, generate, upload

FAST_RETRIES = {
    "ACTIVITY_RETRY_FIRST_INTERVAL_MS": "200",
    "ACTIVITY_RETRY_MAX_INTERVAL_MS": "2000",
    "ACTIVITY_RETRY_ATTEMPTS": "8",
}
RANGES = [
    ("2021-10-01", "2021-10-20"),
    ("2021-10-02", "2021-10-18"),
    ("2021-10-04", "2021-10-19"),
    ("2021-10-06", "2021-10-20"),
]


def expected(start: str, end: str) -> int:
    return expected_count(generate(**SEED), start, end)


def submit(host: HostProcess, start: str, end: str) -> str:
    response = host.get(f"/api/submit/query?s={start}&e={end}")
    assert response.status_code == 202, response.text
    return response.json()["id"]


def progress(host: HostProcess, jobs: dict) -> tuple[int, bool]:
    """Ranges done over all jobs, and whether every job has finished."""
    done, finished = 0, True
    for job_id in jobs:
        status = management_status(host, job_id).json()
        done += (status.get("customStatus") or {}).get("done", 0)
        finished &= status["runtimeStatus"] == "Completed"
    return done, finished


def reached(host: HostProcess, jobs: dict, target: int) -> bool:
    done, finished = progress(host, jobs)
    return done >= target or finished


def assert_exactly_once(host: HostProcess, jobs: dict) -> None:
    for job_id, (start, end) in jobs.items():
        result = wait_done(host, f"/api/status/{job_id}", timeout=180)
        assert result == {"id": job_id, "status": "Completed", "result": expected(start, end)}
        assert_completed_once(host, job_id, start, end)


def restart_storm(audit_table: str, data: Path, kills: int, seed: int) -> None:
    env = {
        "AUDIT_TABLE_CONNECTION_STRING": audit_table,
        "AzureWebJobsStorage": audit_table,
        "MAX_ACTIVITIES_IN_FLIGHT": "2",
        "FUNCTIONS_WORKER_PROCESS_COUNT": "2",
    }
    port, rng = free_port(), random.Random(seed)
    host = HostProcess(ROOT, data, port, env).start()
    jobs: dict[str, tuple[str, str]] = {}
    try:
        for _ in range(kills):
            done, finished = progress(host, jobs)
            if finished:  # keep work fanning out so that every kill lands mid-flight
                jobs.update({submit(host, s, e): (s, e) for s, e in RANGES})
                done = progress(host, jobs)[0]
            target = done + rng.randint(1, 6)
            poll(partial(reached, host, jobs, target), 60, interval=0.01, what="progress")
            host.kill(signal.SIGKILL)
            host = HostProcess(ROOT, data, port, env).start()
        assert_exactly_once(host, jobs)
        assert "Traceback" not in host.logs()
    finally:
        host.kill()


def test_random_sigkills_during_fan_out_lose_and_repeat_nothing(audit_table, tmp_path):
    restart_storm(audit_table, tmp_path / "host", kills=5, seed=11)


@pytest.mark.slow
def test_twenty_five_random_sigkills(audit_table, tmp_path):
    restart_storm(audit_table, tmp_path / "host", kills=25, seed=12)


@pytest.fixture
def own_azurite(tmp_path) -> Azurite:
    """An Azurite these tests may stop and start, seeded with five days of data."""
    emulator = Azurite(tmp_path / "azurite").start()
    upload(emulator.connection_string, "audit", generate(date(2021, 10, 1), 5, 100))
    emulator.wait_saved(time.time())
    yield emulator
    emulator.stop()


def test_a_short_storage_outage_is_ridden_out_by_retries(own_azurite, start_host):
    env = {
        "AUDIT_TABLE_CONNECTION_STRING": own_azurite.connection_string,
        "AzureWebJobsStorage": own_azurite.connection_string,
        "MAX_ACTIVITIES_IN_FLIGHT": "1",
        **FAST_RETRIES,
    }
    host = start_host(env=env)
    job_id = submit(host, "2021-10-01", "2021-10-05")
    own_azurite.stop()
    poll(
        lambda: (
            "query-storage-account-activity-function" in host.logs() and "failed" in host.logs()
        ),
        60,
        what="an activity failing during the outage",
    )
    own_azurite.start()
    result = wait_done(host, f"/api/status/{job_id}", timeout=120)
    truth = expected_count(generate(date(2021, 10, 1), 5, 100), "2021-10-01", "2021-10-05")
    assert result == {"id": job_id, "status": "Completed", "result": truth}


def test_an_outage_longer_than_the_retry_budget_fails_the_job_cleanly(own_azurite, start_host):
    env = {
        "AUDIT_TABLE_CONNECTION_STRING": own_azurite.connection_string,
        "AzureWebJobsStorage": own_azurite.connection_string,
        "ACTIVITY_RETRY_ATTEMPTS": "2",
        "ACTIVITY_RETRY_FIRST_INTERVAL_MS": "100",
    }
    host = start_host(env=env)
    own_azurite.stop()
    job_id = submit(host, "2021-10-01", "2021-10-03")
    result = wait_done(host, f"/api/status/{job_id}", timeout=120)
    assert result == {"id": job_id, "status": "Failed", "result": None, "error": "The job failed."}
    for _ in range(3):  # and the status endpoint keeps answering
        assert host.get(f"/api/status/{job_id}").status_code == 200


def test_flaky_storage_still_gives_exact_results(azurite, audit_table, start_host):
    proxy = FaultyProxy(
        azurite.port, {"503": 0.08, "500": 0.05, "drop": 0.05, "slow": 0.05}, seed=3, delay=0.3
    ).start()
    try:
        env = {
            "AUDIT_TABLE_CONNECTION_STRING": connection_string(proxy.port),
            "AzureWebJobsStorage": azurite.connection_string,
            "MAX_ACTIVITIES_PER_JOB": "1000",  # a range a day: enough requests to meet every fault
            **FAST_RETRIES,
        }
        host = start_host(env=env)
        jobs = {submit(host, s, e): (s, e) for s, e in RANGES[:2]}
        assert_exactly_once(host, jobs)
    finally:
        proxy.stop()
    assert all(proxy.seen[fault] > 0 for fault in ("503", "500", "drop", "slow")), proxy.seen


async def _load(base: str, jobs: int, pollers: int) -> tuple[dict[str, tuple], Counter]:
    codes: Counter = Counter()
    headers = {"x-functions-key": FUNCTION_KEY}
    rng = random.Random(5)
    spans = []
    for _ in range(jobs):
        first = rng.randint(1, 17)
        spans.append((f"2021-10-{first:02d}", f"2021-10-{first + rng.randint(1, 3):02d}"))
    async with aiohttp.ClientSession(
        headers=headers, timeout=aiohttp.ClientTimeout(total=120)
    ) as session:
        gate = asyncio.Semaphore(100)
        stop = asyncio.Event()

        async def one(start: str, end: str) -> tuple[str, tuple]:
            async with (
                gate,
                session.get(f"{base}/api/submit/query", params={"s": start, "e": end}) as response,
            ):
                codes[response.status] += 1
                return (await response.json())["id"], (start, end)

        async def hammer(url: str) -> None:
            for _ in range(100_000):  # bounded; stops when the submissions are done
                if stop.is_set():
                    return
                async with session.get(url) as response:
                    codes[response.status] += 1
                    await response.read()

        first_id, first_span = await one(*spans[0])
        poll_tasks = [
            asyncio.ensure_future(hammer(f"{base}/api/status/{first_id}")) for _ in range(pollers)
        ]
        submitted = dict(
            [(first_id, first_span), *await asyncio.gather(*(one(s, e) for s, e in spans[1:]))]
        )
        stop.set()
        await asyncio.gather(*poll_tasks)
    return submitted, codes


def load_test(audit_table: str, start_host, jobs: int) -> None:
    host = start_host(
        env={"AUDIT_TABLE_CONNECTION_STRING": audit_table, "AzureWebJobsStorage": audit_table}
    )
    submitted, codes = asyncio.run(_load(host.base, jobs, pollers=16))
    assert codes[202] >= jobs and not any(code >= 500 for code in codes), codes
    for job_id, (start, end) in submitted.items():
        result = wait_done(host, f"/api/status/{job_id}", timeout=300)
        assert result["result"] == expected(start, end)
    rss = next(
        line
        for line in Path(f"/proc/{host.process.pid}/status").read_text().splitlines()
        if line.startswith("VmHWM:")
    )
    assert int(rss.split()[1]) < 512 * 1024, rss  # peak memory stays bounded (KiB)


def test_hundreds_of_concurrent_submissions_under_polling(audit_table, start_host):
    load_test(audit_table, start_host, jobs=300)


@pytest.mark.slow
def test_a_thousand_concurrent_submissions_under_polling(audit_table, start_host):
    load_test(audit_table, start_host, jobs=1000)


# ---- the host's own faults (a hostile run found each of these)
HANGS = ROOT / "tests" / "apps" / "hangs"


def app_env(audit_table: str, **extra: str) -> dict[str, str]:
    return {
        "AUDIT_TABLE_CONNECTION_STRING": audit_table,
        "AzureWebJobsStorage": audit_table,
        **extra,
    }


def start_sleep(host: HostProcess, seconds: float) -> str:
    response = requests.post(f"{host.base}/api/start/{seconds}", timeout=10)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def final_status(host: HostProcess, instance_id: str, timeout: float = 60) -> dict:
    def done() -> dict | None:
        response = management_status(host, instance_id)
        return response.json() if response.status_code == 200 else None

    return poll(done, timeout, interval=0.1, what=f"instance {instance_id}")


def test_killed_workers_are_replaced_and_every_job_completes_exactly(audit_table, start_host):
    """A dead worker was never replaced: every later job failed with a broken pipe."""
    env = app_env(audit_table, FUNCTIONS_WORKER_PROCESS_COUNT="2", MAX_ACTIVITIES_IN_FLIGHT="2")
    host = start_host(env=env)
    jobs = {submit(host, s, e): (s, e) for s, e in RANGES}
    killed: list[int] = []
    for round_ in range(4):
        poll(partial(reached, host, jobs, 6 * (round_ + 1)), 60, interval=0.01, what="progress")
        [worker] = poll(lambda: [p for p in host.workers() if p not in killed], 30)
        os.kill(worker, signal.SIGKILL)
        killed.append(worker)
        poll(lambda: [p for p in host.workers() if p not in killed], 30, what="a new worker")
    assert_exactly_once(host, jobs)
    for pid in host.children():  # the dead were reaped: no zombie stays behind
        assert Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    assert "exited (code -9); starting another" in host.logs()


def test_a_worker_that_dies_before_its_first_call_is_replaced_at_once(start_host):
    """It stayed a zombie, and the pool one worker short, until the next call came."""
    host = start_host(app=HANGS, env={"FUNCTIONS_WORKER_PROCESS_COUNT": "2"})  # no call yet
    [first] = poll(host.workers, 30, what="the worker process")
    os.kill(first, signal.SIGKILL)
    poll(lambda: [p for p in host.workers() if p != first], 30, what="a new worker")
    assert "exited (code -9); starting another" in host.logs()
    for pid in host.children():  # the dead one was reaped
        assert Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("processes", ["1", "2"])
def test_function_timeout_fails_a_hung_activity_and_frees_its_slot(start_host, processes):
    """functionTimeout applied only to HTTP functions: a hung activity held its slot forever."""
    host = start_host(app=HANGS, env={"FUNCTIONS_WORKER_PROCESS_COUNT": processes})
    before = set(host.workers())
    hung = final_status(host, start_sleep(host, 600))
    assert hung["runtimeStatus"] == "Failed"
    assert "Timeout value of 00:00:02 exceeded by function 'Functions.Sleepy'" in hung["output"]
    quick = final_status(host, start_sleep(host, 0))  # slots and workers are free again
    assert quick["runtimeStatus"] == "Completed"
    if processes == "2":  # the hung worker was recycled, twice (two attempts)
        assert not before & set(host.workers())
        assert host.logs().count("ran past functionTimeout: recycling worker") == 2


@pytest.mark.parametrize("processes", ["1", "2"])
def test_sigterm_ends_the_host_even_with_hung_activities(start_host, processes):
    host = start_host(app=HANGS, env={"FUNCTIONS_WORKER_PROCESS_COUNT": processes})
    hung = final_status(host, start_sleep(host, 600))  # timed out; a thread cannot be stopped
    assert hung["runtimeStatus"] == "Failed"
    running = start_sleep(host, 600)  # and one hung right now
    poll(
        lambda: management_status(host, running).json()["runtimeStatus"] == "Running",
        10,
        what="the second job's activity",
    )
    began = time.monotonic()
    host.process.send_signal(signal.SIGTERM)
    assert host.process.wait(timeout=30) == 0
    assert time.monotonic() - began < 15  # the shutdown budget, not a thread's lifetime


def test_hung_sync_http_calls_never_starve_later_ones(start_host):
    """A timed-out sync HTTP (or timer) call kept its thread in the one shared pool, which was
    never replaced: once as many had hung as it has threads, every later one timed out."""
    host = start_host(app=HANGS)
    threads = 2 + 8  # the pool: maxConcurrentActivityFunctions (host.json) + 8
    nap = f"{host.base}/api/nap"
    with ThreadPoolExecutor(threads + 2) as callers:
        hung = list(
            callers.map(
                lambda _: requests.get(f"{nap}/600", timeout=30).status_code, range(threads + 2)
            )
        )
    assert hung == [500] * (threads + 2)  # each past functionTimeout (2 s)
    for _ in range(3):  # and again: a fresh pool each time its calls hang
        awake = requests.get(f"{nap}/0", timeout=30)
        assert (awake.status_code, awake.text) == (200, "awake")
    assert "Timeout value of 00:00:02 exceeded by function 'Functions.nap'" in host.logs()


def test_sigterm_ends_the_host_with_a_request_held_on_the_rpc_port(start_host):
    """The RPC listener waited up to aiohttp's default 60 s for its requests at shutdown."""
    host = start_host(app=ROOT / "tests" / "apps" / "conformance")
    held = socket.create_connection(("127.0.0.1", host.rpc_port), timeout=10)
    try:  # create-and-wait on an orchestration that waits for an event: held up to 600 s
        held.sendall(
            b"POST /durabletask/orchestrators/WaitEvent?timeout=600&pollingInterval=1 HTTP/1.1"
            b"\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
        )
        instances = f"{host.base}/runtime/webhooks/durabletask/instances"
        poll(
            lambda: requests.get(instances, params={"code": SYSTEM_KEY}, timeout=10).json(),
            10,
            what="the held request's instance",
        )
        began = time.monotonic()
        host.process.send_signal(signal.SIGTERM)
        assert host.process.wait(timeout=30) == 0
        assert time.monotonic() - began < 15
    finally:
        held.close()


def devhost_command(data: Path) -> list[str]:
    port = str(free_port())
    return [
        sys.executable,
        "-m",
        "devhost",
        "--app",
        str(ROOT),
        "--port",
        port,
        "--data",
        str(data),
    ]


def devhost_once(
    data: Path, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess:
    """Start a host that is expected to refuse to start: its exit code and output."""
    return subprocess.run(
        devhost_command(data),
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_one_host_per_data_folder_and_a_killed_hosts_lock_is_gone(audit_table, tmp_path):
    """Two hosts on one folder ran every activity 3.4 times and left jobs stuck forever."""
    env, data = app_env(audit_table), tmp_path / "data"
    first = HostProcess(ROOT, data, free_port(), env).start()
    try:
        second = devhost_once(data, env)
        assert second.returncode == 2
        assert second.stderr.strip().count("\n") == 0, second.stderr
        assert "in use by another devhost" in second.stderr
        assert str(first.process.pid) in second.stderr
    finally:
        first.kill(signal.SIGKILL)
    again = HostProcess(ROOT, data, free_port(), env).start()  # the kernel dropped the lock
    again.kill()


def test_the_store_is_private_to_its_owner(audit_table, tmp_path):
    """It held every job's input and results, readable by anyone (0644)."""
    data = tmp_path / "private"  # the host makes it
    process = subprocess.Popen(
        devhost_command(data),
        cwd=ROOT,
        env={**os.environ, **app_env(audit_table)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        poll((data / "AuditQueryHub.sqlite.created").exists, 60, what="the store")
        assert (data.stat().st_mode & 0o777) == 0o700
        for name in ("AuditQueryHub.sqlite", "AuditQueryHub.sqlite.created", "host.lock"):
            assert ((data / name).stat().st_mode & 0o777) == 0o600, name
    finally:
        process.kill()
        process.wait(timeout=30)


def damaged(path: Path, how: str) -> None:
    content = path.read_bytes()
    if how == "cut in half":
        path.write_bytes(content[: len(content) // 2])
    elif how == "pages overwritten":
        path.write_bytes(content[:4096] + b"\xa5" * (len(content) - 8192) + content[-4096:])
    elif how == "empty":
        path.write_bytes(b"")
    else:  # removed
        path.unlink()


@pytest.mark.parametrize("how", ["cut in half", "pages overwritten", "empty", "removed"])
def test_a_damaged_or_vanished_store_is_refused_with_one_line(audit_table, tmp_path, how):
    """It started anyway: jobs stayed Pending forever under 100 MB of tracebacks a minute, and
    an emptied store silently lost every job."""
    env, data = app_env(audit_table), tmp_path / "data"
    host = HostProcess(ROOT, data, free_port(), env).start()
    jobs = [submit(host, "2021-10-01", "2021-10-20") for _ in range(20)]
    assert wait_done(host, f"/api/status/{jobs[-1]}", timeout=120)["status"] == "Completed"
    host.process.send_signal(signal.SIGTERM)
    host.process.wait(timeout=30)
    store = data / "AuditQueryHub.sqlite"
    assert store.stat().st_size > 16384
    damaged(store, how)
    refused = devhost_once(data, env)
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0, refused.stderr
    assert str(store) in refused.stderr
    assert "restore" in refused.stderr and "Traceback" not in refused.stderr


@contextmanager
def tmpfs(mount: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` on `mount`, owned by this user: as root, or with `sudo -n` (hosted CI
    runners are not root but have passwordless sudo). When it cannot be mounted, skip_or_fail:
    under CI_REQUIRES_ALL these tests must run."""
    mount_tool = require_tool("mount", why="the full-disk tests mount a tmpfs")
    umount_tool = require_tool("umount", why="the full-disk tests mount a tmpfs")
    as_root = [] if os.geteuid() == 0 else [require_tool("sudo", why="mount needs root"), "-n"]
    options = f"size={size},mode=0700,uid={os.getuid()},gid={os.getgid()}"
    result = subprocess.run(
        [*as_root, mount_tool, "-t", "tmpfs", "-o", options, "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        why = (result.stderr.strip().splitlines() or ["no reason given"])[-1]
        skip_or_fail(f"cannot mount a tmpfs (as root or with sudo -n): {why}")
    try:
        yield mount
    finally:
        subprocess.run([*as_root, umount_tool, "-l", str(mount)], check=False)


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 16 MiB disk that can be filled."""
    mount = tmp_path / "disk"
    mount.mkdir()
    with tmpfs(mount, "16m") as disk:
        yield disk


@pytest.fixture
def sudo_that_refuses(tmp_path, monkeypatch) -> Path:
    """As a user without root or passwordless sudo: a `sudo` that records its arguments and
    refuses, first on PATH. Returns the file of its arguments."""
    calls = tmp_path / "sudo-calls"
    fake = tmp_path / "bin" / "sudo"
    fake.parent.mkdir()
    fake.write_text(
        f"#!/bin/sh\nprintf '%s\\n' \"$*\" >> {calls}\necho 'a password is required' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    return calls


def test_a_tmpfs_is_mounted_with_sudo_when_not_root_and_fails_under_ci_requires_all(
    tmp_path, sudo_that_refuses, monkeypatch
):
    """The full-disk tests skipped on every hosted runner (not root) and CI never said so."""
    monkeypatch.setenv("CI_REQUIRES_ALL", "1")
    with pytest.raises(AssertionError, match="a password is required"), tmpfs(tmp_path, "1m"):
        pass
    assert sudo_that_refuses.read_text().startswith("-n ")
    assert " -t tmpfs " in sudo_that_refuses.read_text()


def test_a_tmpfs_that_cannot_be_mounted_skips_outside_ci(tmp_path, sudo_that_refuses, monkeypatch):
    monkeypatch.delenv("CI_REQUIRES_ALL", raising=False)
    with pytest.raises(pytest.skip.Exception, match="cannot mount a tmpfs"), tmpfs(tmp_path, "1m"):
        pass


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    # unbuffered: a buffered file would flush its rejected tail again on close, and raise
    with open(filler, "wb", buffering=0) as out:
        for _ in range(10_000):  # bounded: 16 MiB at most
            try:
                out.write(b"\0" * 65536)
                out.flush()
                os.fsync(out.fileno())
            except OSError:
                break
    return filler


def test_a_full_disk_refuses_new_work_with_503_and_resumes_when_space_returns(
    audit_table, small_disk
):
    env = app_env(audit_table)
    host = HostProcess(ROOT, small_disk / "data", free_port(), env).start()
    try:
        assert wait_done(host, f"/api/status/{submit(host, '2021-10-01', '2021-10-02')}")
        filler = fill(small_disk)
        refused = [host.get("/api/submit/query?s=2021-10-03&e=2021-10-05") for _ in range(5)]
        assert {r.status_code for r in refused} == {503}
        assert refused[0].json() == {"error": "The job service is unavailable; retry later."}
        filler.unlink()
        job = submit(host, "2021-10-03", "2021-10-05")
        assert wait_done(host, f"/api/status/{job}")["result"] == expected(
            "2021-10-03", "2021-10-05"
        )
        logs = host.logs()  # the host's faults, once each (the app logs each refused submit)
        assert logs.count("the store failed: OperationalError") <= 1, logs[-3000:]
        assert logs.count("failed in the host") <= 1, logs[-3000:]
    finally:
        host.kill()


def test_starting_on_a_full_disk_says_so_in_one_line(audit_table, small_disk):
    fill(small_disk)
    refused = devhost_once(small_disk / "data", app_env(audit_table))
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0, refused.stderr
    assert "No space left on device" in refused.stderr or "disk is full" in refused.stderr
