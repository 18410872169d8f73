"""make bench: the job against the original single query, and the local host under load.

Writes docs/benchmarks.json and docs/benchmarks.md (or --out DIR). --smoke runs a seconds-long
version with tiny sizes, so CI keeps the harness alive. Only loopback; every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import aiohttp
import requests
from azure.core.credentials import AzureNamedKeyCredential
from azure.data.tables import TableClient, TableSasPermissions, generate_table_sas

from devhost.store.sqlite import Store
from tools.azurite import ACCOUNT, ACCOUNT_KEY, ROOT, Azurite
from tools.bench_data import HOME, DataSet
from tools.bench_host import KEY, Host, job, original, percentile
from tools.bench_modelled import ModelledPlan, overhead, run_modelled
from tools.bench_report import write_report
from tools.seed import generate, upload

START = date(2021, 1, 1)


@dataclass
class Plan:
    entities: int
    days: int
    runs: int
    sizes: list[int]
    lone_jobs: int
    burst_jobs: int
    poll_seconds: float
    memory_jobs: int
    modelled: ModelledPlan
    retention: tuple[int, int]  # rounds, jobs per round


FULL = Plan(
    100_000,
    30,
    5,
    [25_000, 50_000, 100_000, 200_000],
    30,
    500,
    10.0,
    10_000,
    ModelledPlan(
        data=DataSet(1_000_000, 366),
        days=(30, 120, 366),
        runs=2,
        sweep=((16, 8), (16, 12), (32, 16), (48, 16)),
        overhead_days=(30, 40, 120, 366),
    ),
    (10, 1000),
)
SMOKE = Plan(
    3_000,
    5,
    2,
    [1_000, 2_000],
    3,
    20,
    1.0,
    100,
    ModelledPlan(
        data=DataSet(2_400, 12), days=(4, 12), runs=1, sweep=((4, 2),), overhead_days=(4, 12)
    ),
    (2, 20),
)


def seed_table(azurite: Azurite, table: str, entities: int, days: int) -> tuple[str, str]:
    upload(azurite.connection_string, table, generate(START, days, max(1, entities // days)))
    return START.isoformat(), (START + timedelta(days=days - 1)).isoformat()


# ---- (c) the floor: page through the same filtered result, reading only what paging needs
def floor(azurite: Azurite, table: str, start: str, end: str) -> float:
    sas = generate_table_sas(
        AzureNamedKeyCredential(ACCOUNT, ACCOUNT_KEY),
        table,
        permission=TableSasPermissions(read=True),
        expiry=time.time() + 3600,
    )
    url = f"http://127.0.0.1:{azurite.port}/{ACCOUNT}/{table}()?{sas}"
    params = {
        "$filter": f"PartitionKey ge '{start}' and PartitionKey le '{end}' and CertNumber ne ''",
        "$select": "identificationNumber",
        "$top": "1000",
    }
    headers = {"Accept": "application/json;odata=nometadata", "x-ms-version": "2019-02-02"}
    session = requests.Session()
    began = time.perf_counter()
    for _ in range(1_000_000):  # bounded: a page per iteration
        response = session.get(url, params=params, headers=headers, timeout=60)
        response.raise_for_status()
        next_pk = response.headers.get("x-ms-continuation-NextPartitionKey")
        if not next_pk:
            break
        params["NextPartitionKey"] = next_pk
        params["NextRowKey"] = response.headers.get("x-ms-continuation-NextRowKey", "")
    return time.perf_counter() - began


def query_vs_original(
    azurite: Azurite, host: Host, table: str, start: str, end: str, runs: int
) -> dict:
    a, b, c = [], [], []
    count = scanned = 0
    for _ in range(runs):  # alternate, so drift on a shared machine hits all three alike
        seconds, count, scanned = original(azurite.connection_string, table, start, end)
        a.append(seconds)
        seconds, result, _ = job(host, start, end)
        if result != count:
            raise AssertionError(f"job gave {result}, the original query {count}")
        b.append(seconds)
        c.append(floor(azurite, table, start, end))
    a_med, b_med, c_med = (statistics.median(x) for x in (a, b, c))
    return {
        "entities_matched": scanned,
        "distinct": count,
        "runs": runs,
        "original_s": a_med,
        "job_s": b_med,
        "floor_s": c_med,
        "original_entities_per_s": scanned / a_med,
        "job_entities_per_s": scanned / b_med,
        "ratio_job_to_original": b_med / a_med,
        "ratio_job_to_floor": b_med / c_med,
        "samples": {"original": a, "job": b, "floor": c},
    }


# ---- (3) the engine: trivial jobs (ranges with no data)
def _trivial_range(offset: int) -> dict:
    day = date(1990, 1, 1) + timedelta(days=offset % 3000)
    return {"s": day.isoformat(), "e": (day + timedelta(days=1)).isoformat()}


async def _lone(session: aiohttp.ClientSession, base: str, offset: int) -> float:
    """Submit, then poll every 2 ms: the latency a caller sees, to within the poll interval."""
    began = time.perf_counter()
    async with session.get(f"{base}/submit/query", params=_trivial_range(offset)) as response:
        url = (await response.json())["statusUri"]
    for _ in range(30_000):  # at most a minute of polling
        async with session.get(url) as response:
            if response.status == 200:
                return time.perf_counter() - began
        await asyncio.sleep(0.002)
    raise TimeoutError(url)


async def _burst(session: aiohttp.ClientSession, base: str, first: int, count: int) -> list[str]:
    """Submit `count` jobs, at most 64 requests in flight (a fleet of clients, not a storm)."""
    gate = asyncio.Semaphore(64)

    async def submit(offset: int) -> str:
        async with (
            gate,
            session.get(f"{base}/submit/query", params=_trivial_range(offset)) as response,
        ):
            return (await response.json())["id"]

    return await asyncio.gather(*(submit(first + i) for i in range(count)))


def _wait(database: Path, done: Callable[[Store], bool], timeout: float, what: str) -> None:
    """Poll the host's store every 50 ms until `done` (reading it, never writing)."""
    store = Store(database)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if done(store):
                return
            time.sleep(0.05)
    finally:
        store.close()
    raise TimeoutError(f"{what} within {timeout}s")


def _wait_completed(database: Path, ids: list[str], timeout: float) -> list[tuple[float, float]]:
    """(created, completed) epochs from the host's store, polling every 50 ms: the status API
    gives whole seconds only."""
    rows: list[tuple[float, float]] = []

    def all_completed(store: Store) -> bool:
        rows[:] = store.completion_times(ids)
        return len(rows) == len(ids)

    _wait(database, all_completed, timeout, f"{len(ids)} jobs did not all complete")
    return rows


async def _submit_burst(base: str, first: int, count: int) -> tuple[float, list[str]]:
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(headers={"x-functions-key": KEY}, timeout=timeout) as s:
        began = time.time()
        return began, await _burst(s, base, first, count)


def engine(host: Host, lone: int, burst: int) -> dict:
    async def lone_jobs() -> list[float]:
        async with aiohttp.ClientSession(headers={"x-functions-key": KEY}) as session:
            await _lone(session, host.base, 2999)  # warm-up: first calls import and connect
            return [await _lone(session, host.base, i) for i in range(lone)]

    lone_latency = asyncio.run(lone_jobs())
    began, ids = asyncio.run(_submit_burst(host.base, lone, burst))
    rows = _wait_completed(host.database, ids, 600)
    latency = [done - created for created, done in rows]
    elapsed = max(done for _, done in rows) - began
    return {
        "lone_jobs": lone,
        "lone_p50_ms": percentile(lone_latency, 0.5) * 1000,
        "lone_p99_ms": percentile(lone_latency, 0.99) * 1000,
        "burst_jobs": burst,
        "burst_p50_ms": percentile(latency, 0.5) * 1000,
        "burst_p99_ms": percentile(latency, 0.99) * 1000,
        "jobs_per_s": burst / elapsed,
    }


# ---- (4) the status endpoint under 64 keep-alive pollers
async def _pollers(url: str, clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = 0
    stop_at = time.monotonic() + seconds

    async def poller() -> None:
        nonlocal errors
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(
            connector=connector, headers={"x-functions-key": KEY}
        ) as session:
            while time.monotonic() < stop_at:
                began = time.perf_counter()
                try:
                    async with session.get(url) as response:
                        await response.read()
                        if response.status != 200:
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1
                latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(poller() for _ in range(clients)))
    elapsed = time.perf_counter() - began
    return {
        "clients": clients,
        "seconds": elapsed,
        "requests": len(latencies),
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "errors": errors,
    }


def status_polling(host: Host, seconds: float) -> dict:
    """Pollers on a finished job's status URL (its answer never changes, so all are alike)."""
    _, _, url = job(host, "1990-01-01", "1990-01-02")
    return asyncio.run(_pollers(url, 64, seconds))


def memory(host: Host, jobs: int) -> dict:
    done = 0
    while done < jobs:  # bounded by jobs: each pass completes a batch
        batch = min(500, jobs - done)
        _, ids = asyncio.run(_submit_burst(host.base, done, batch))
        _wait_completed(host.database, ids, 600)
        done += batch
    size = sum(p.stat().st_size for p in host.data.glob("*.sqlite*"))
    return {"jobs": done, "peak_rss_mib": host.peak_rss_mib(), "database_mib": size / 2**20}


def retention(host: Host, rounds: int, per_round: int) -> dict:
    """Rounds of jobs on a host that purges finished jobs at once (JOB_RETENTION_DAYS=0, every
    2 s): the store's size after each round, once retention has caught up."""
    sizes = []
    for round_number in range(rounds):
        _, ids = asyncio.run(_submit_burst(host.base, round_number * per_round, per_round))
        _wait(host.database, lambda s, ids=ids: s.count(ids, finished=False) == 0, 600, "jobs")
        _wait(host.database, lambda s: s.count() == 0, 120, "retention to purge them")
        size = sum(p.stat().st_size for p in host.data.glob("*.sqlite*"))
        sizes.append({"jobs": (round_number + 1) * per_round, "database_mib": size / 2**20})
    return {"per_round": per_round, "rounds": sizes}


def machine() -> dict:
    meminfo = Path("/proc/meminfo").read_text().split("\n")[0].split()
    azurite = json.loads((ROOT / "node_modules" / "azurite" / "package.json").read_text())
    node = subprocess.run(
        [shutil.which("node") or "node", "--version"], capture_output=True, text=True, check=False
    )
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(int(meminfo[1]) / 2**20, 1),
        "python": platform.python_version(),
        "node": node.stdout.strip(),
        "azurite": azurite["version"],
        "platform": platform.platform(),
    }


def run(plan: Plan, work: Path, home: Path) -> dict:
    results: dict = {"machine": machine(), "plan": plan.__dict__}
    results["modelled"] = run_modelled(plan.modelled, work, home)
    azurite = Azurite(work / "azurite").start()
    hosts: list[Host] = []
    try:
        table = "bench"
        start, end = seed_table(azurite, table, plan.entities, plan.days)
        host = Host(azurite.connection_string, table, work)
        hosts.append(host)
        results["query"] = query_vs_original(azurite, host, table, start, end, plan.runs)
        scaling = []
        for size in plan.sizes:
            name = f"scale{size}"
            s, e = seed_table(azurite, name, size, plan.days)
            sized = Host(azurite.connection_string, name, work)
            hosts.append(sized)
            row = query_vs_original(azurite, sized, name, s, e, max(1, plan.runs // 2))
            scaling.append(
                {
                    "entities": size,
                    "job_s": row["job_s"],
                    "original_s": row["original_s"],
                    "floor_s": row["floor_s"],
                }
            )
            sized.stop()
            hosts.remove(sized)
        results["scaling"] = scaling
    finally:
        for running in hosts:
            running.stop()
        azurite.stop()
    results.update(engine_sections(plan, work))
    return results


def engine_sections(plan: Plan, work: Path) -> dict:
    """Orchestration overhead and sections 3-5 on a fresh Azurite with one empty table: they
    measure the host, not the emulator (an Azurite holding the earlier sections' 475,000
    entities answers even empty queries several times slower)."""
    azurite = Azurite(work / "azurite-empty").start()
    try:
        TableClient.from_connection_string(azurite.connection_string, "empty").create_table()
        single = Host(azurite.connection_string, "empty", work, processes=1)
        try:
            one_process = engine(single, 0, plan.burst_jobs)["jobs_per_s"]
        finally:
            single.stop()
        host = Host(azurite.connection_string, "empty", work)
        try:
            return {
                "overhead": overhead(azurite, work, plan.modelled),
                "engine": {
                    **engine(host, plan.lone_jobs, plan.burst_jobs),
                    "jobs_per_s_one_process": one_process,
                },
                "status_polling": status_polling(host, plan.poll_seconds),
                "memory": memory(host, plan.memory_jobs),
                "retention": retention_section(azurite, work, plan),
            }
        finally:
            host.stop()
    finally:
        azurite.stop()


def retention_section(azurite: Azurite, work: Path, plan: Plan) -> dict:
    purging = {"JOB_RETENTION_DAYS": "0", "JOB_RETENTION_SCHEDULE": "*/2 * * * * *"}
    host = Host(azurite.connection_string, "empty", work, settings=purging)
    try:
        return retention(host, *plan.retention)
    finally:
        host.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="seconds-long run with tiny sizes")
    parser.add_argument("--out", type=Path, help="where the JSON and Markdown go")
    parser.add_argument("--entities", type=int)
    parser.add_argument("--runs", type=int)
    args = parser.parse_args(argv)
    plan = SMOKE if args.smoke else FULL
    plan = replace(plan, entities=args.entities or plan.entities, runs=args.runs or plan.runs)
    out = args.out or (Path(tempfile.mkdtemp()) if args.smoke else ROOT / "docs")
    with tempfile.TemporaryDirectory() as work:
        results = run(plan, Path(work), Path(work) if args.smoke else HOME)
    write_report(results, out)
    print(f"wrote {out / 'benchmarks.json'} and {out / 'benchmarks.md'}")


if __name__ == "__main__":
    main()
