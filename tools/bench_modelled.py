"""make bench, modelled Azure: the original query and the job through tools.table_proxy.

Azurite's own query cost grows with the table's total size (it scans its whole collection for
every page), so timings against it say little about Azure. Here every query page goes through a
proxy that releases it when Table Storage's published throughput (tools.table_proxy.Limits)
allows, after a warm-up pass has recorded Azurite's answers. The floor is what those rates allow
at best: all the entities at the account's rate, or the biggest partition at a partition's rate,
whichever takes longer.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shared.settings import Settings
from tools.azurite import Azurite
from tools.bench_data import TABLE, DataSet, open_dataset
from tools.bench_host import Host, job, original
from tools.seed import upload
from tools.table_proxy import Limits, ProxyCache, proxied_connection_string, serving

DEFAULTS = Settings()
# Orchestration with a query that answers at once: 4 rows a day, so every range still stores a
# blob and the count and clean-up activities run, as in a job over real data.
SPARSE = DataSet(4 * 366, 366)
SPARSE_TABLE = "sparse"


@dataclass(frozen=True)
class ModelledPlan:
    data: DataSet
    days: tuple[int, ...]  # job sizes: the first N days of the data set
    runs: int  # measured runs of each job (after one warm-up)
    sweep: tuple[tuple[int, int], ...]  # (MAX_ACTIVITIES_PER_JOB, MAX_ACTIVITIES_IN_FLIGHT)
    overhead_days: tuple[int, ...]  # job sizes with an instant query


def settings(per_job: int, in_flight: int) -> dict[str, str]:
    return {"MAX_ACTIVITIES_PER_JOB": str(per_job), "MAX_ACTIVITIES_IN_FLIGHT": str(in_flight)}


def truth(data: DataSet, sizes: tuple[int, ...]) -> tuple[dict[int, int], list[int]]:
    """The right answer for each size and the matching entities per day, computed in Python
    from the generator (never by querying the table)."""
    seen: set[str] = set()
    distinct, per_day = {}, []
    for offset in range(max(sizes)):
        rows = [e for e in data.rows(offset) if e["CertNumber"] != ""]
        per_day.append(len(rows))
        seen.update(e["identificationNumber"] for e in rows if "identificationNumber" in e)
        if offset + 1 in sizes:
            distinct[offset + 1] = len(seen)
    return distinct, per_day


def floor(per_day: list[int], limits: Limits) -> dict:
    total = sum(per_day)
    account = total / limits.account_entities_per_s
    partition = max(per_day) / limits.partition_entities_per_s
    return {
        "entities": total,
        "account_bound_s": account,
        "partition_bound_s": partition,
        "floor_s": max(account, partition) + limits.request_latency_s,
    }


def measured(run: Callable[[], tuple[float, int]], runs: int, expected: int) -> list[float]:
    """One warm-up (records Azurite's pages), then `runs` timed runs; every answer checked."""
    samples = []
    for attempt in range(runs + 1):
        seconds, answer = run()
        if answer != expected:
            raise AssertionError(f"got {answer}, the right answer is {expected}")
        if attempt:
            samples.append(seconds)
    return samples


def _job_row(host: Host, data: DataSet, days: int, runs: int, expected: int) -> dict:
    start, end = data.span(days)
    urls: list[str] = []

    def once() -> tuple[float, int]:
        seconds, result, url = job(host, start, end)
        urls.append(url)
        return seconds, result

    samples = measured(once, runs, expected)
    return {
        "job_s": statistics.median(samples),
        "samples": samples,
        "history_kib": host.history_bytes(urls[-1].rsplit("/", 1)[1]) / 1024,
    }


def run_modelled(
    plan: ModelledPlan, work: Path, home: Path, log: Callable[[str], None] = print
) -> dict:
    limits = Limits()
    distinct, per_day = truth(plan.data, plan.days)
    azurite = open_dataset(plan.data, home, log)
    try:
        cache = ProxyCache(plan.data.folder(home) / "proxy-cache.sqlite")
        with serving(f"http://127.0.0.1:{azurite.port}", limits, cache) as port:
            proxied = proxied_connection_string(azurite.connection_string, port)
            sizes = []
            for days in plan.days:
                start, end = plan.data.span(days)
                log(f"modelled: the original query over {days} days")
                seconds = measured(
                    lambda s=start, e=end: original(proxied, TABLE, s, e)[:2], 1, distinct[days]
                )
                sizes.append(
                    {"days": days, "original_s": seconds[0], **floor(per_day[:days], limits)}
                )
            host = Host(proxied, TABLE, work, storage=azurite.connection_string)
            try:
                for row in sizes:
                    log(f"modelled: the job over {row['days']} days")
                    row.update(
                        _job_row(host, plan.data, row["days"], plan.runs, distinct[row["days"]])
                    )
                memory = {
                    "host_peak_mib": host.peak_rss_mib(),
                    "worker_peak_mib": host.worker_peak_rss_mib(),
                }
            finally:
                host.stop()
            sweep = []
            largest = max(plan.days)
            for per_job, in_flight in plan.sweep:
                log(f"modelled sweep: {per_job} activities per job, {in_flight} in flight")
                tuned = Host(
                    proxied,
                    TABLE,
                    work,
                    storage=azurite.connection_string,
                    settings=settings(per_job, in_flight),
                )
                try:
                    row = _job_row(tuned, plan.data, largest, 1, distinct[largest])
                finally:
                    tuned.stop()
                sweep.append({"per_job": per_job, "in_flight": in_flight, **row})
            cached_pages = len(cache)
    finally:
        azurite.stop()
    for row in sizes:
        row["job_to_original"] = row["job_s"] / row["original_s"]
        row["job_to_floor"] = row["job_s"] / row["floor_s"]
    return {
        "limits": limits.__dict__,
        "entities": plan.data.per_day * plan.data.days,
        "days_in_data": plan.data.days,
        "defaults": {
            "per_job": DEFAULTS.max_activities_per_job,
            "in_flight": DEFAULTS.max_in_flight,
        },
        "sizes": sizes,
        "memory": memory,
        "sweep": sweep,
        "cached_pages": cached_pages,
    }


def overhead(azurite: Azurite, work: Path, plan: ModelledPlan) -> dict:
    """Orchestration alone: jobs over a sparse table (SPARSE), whose queries answer at once."""
    upload(
        azurite.connection_string,
        SPARSE_TABLE,
        (e for d in range(SPARSE.days) for e in SPARSE.rows(d)),
    )
    distinct, _ = truth(SPARSE, plan.overhead_days)
    rows = []
    for label, extra in (("defaults", {}), ("one activity per day", settings(1000, 16))):
        host = Host(azurite.connection_string, SPARSE_TABLE, work, settings=extra)
        try:
            for days in plan.overhead_days:
                start, end = SPARSE.span(days)
                samples = measured(
                    lambda h=host, s=start, e=end: job(h, s, e)[:2],
                    max(3, plan.runs),
                    distinct[days],
                )
                _, _, url = job(host, start, end)
                rows.append(
                    {
                        "plan": label,
                        "days": days,
                        "job_s": statistics.median(samples),
                        "history_kib": host.history_bytes(url.rsplit("/", 1)[1]) / 1024,
                    }
                )
        finally:
            host.stop()
    return {"rows": rows}
