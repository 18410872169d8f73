"""Faults and load against the local host and Azurite: nothing lost, nothing done twice.

The long variants (marker `slow`) run with `pytest -m slow`; CI runs the short ones.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import Counter
from datetime import date
from functools import partial
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import SEED
from tests.faults import FaultyProxy
from tests.support import (
    FUNCTION_KEY,
    ROOT,
    HostProcess,
    assert_completed_once,
    management_status,
    poll,
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
        days = (date.fromisoformat(end) - date.fromisoformat(start)).days + 1
        assert_completed_once(host, job_id, days)


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
