"""Render benchmark results as JSON and as the Markdown table in docs/benchmarks.md."""

from __future__ import annotations

import json
from pathlib import Path

TARGETS = {
    "ratio_job_to_original": ("job / original", "<=", 0.6),
    "lone_p50_ms": ("lone trivial job p50 (ms)", "<=", 50),
    "jobs_per_s": ("trivial jobs per second", ">=", 100),
    "requests_per_s": ("status requests per second", ">=", 1000),
    "p99_ms": ("status p99 (ms)", "<=", 100),
    "errors": ("status errors", "<=", 0),
}


def verdict(value: float, op: str, target: float) -> str:
    met = value <= target if op == "<=" else value >= target
    return "met" if met else "**missed**"


def _row(label: str, value: float, op: str, target: float) -> str:
    return f"| {label} | {value:,.2f} | {op} {target:g} | {verdict(value, op, target)} |"


def markdown(results: dict) -> str:
    m, q, e, s, mem = (
        results[k] for k in ("machine", "query", "engine", "status_polling", "memory")
    )
    lines = [
        "# Benchmarks",
        "",
        "Produced by `make bench` (`tools/bench.py`); rerun it to refresh this page. Medians",
        f"of {q['runs']} alternating runs on a shared machine: ratios matter more than times.",
        "",
        f"Machine: {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}, "
        f"Node.js {m['node']}, Azurite {m['azurite']} ({m['platform']}).",
        "",
        "## Targets",
        "",
        "| What | Measured | Target | |",
        "| --- | ---: | --- | --- |",
        _row(
            *TARGETS["ratio_job_to_original"][:1],
            q["ratio_job_to_original"],
            *TARGETS["ratio_job_to_original"][1:],
        ),
        _row(TARGETS["lone_p50_ms"][0], e["lone_p50_ms"], *TARGETS["lone_p50_ms"][1:]),
        _row(TARGETS["jobs_per_s"][0], e["jobs_per_s"], *TARGETS["jobs_per_s"][1:]),
        _row(TARGETS["requests_per_s"][0], s["requests_per_s"], *TARGETS["requests_per_s"][1:]),
        _row(TARGETS["p99_ms"][0], s["p99_ms"], *TARGETS["p99_ms"][1:]),
        _row(TARGETS["errors"][0], s["errors"], *TARGETS["errors"][1:]),
        "",
        f"## 1. The job against the original query ({q['entities_matched']:,} matching entities, "
        f"{q['distinct']:,} distinct ids)",
        "",
        "| | wall time (s) | entities/s |",
        "| --- | ---: | ---: |",
        f"| (a) original single sequential query | {q['original_s']:.2f} | "
        f"{q['original_entities_per_s']:,.0f} |",
        f"| (b) the job through the local host | {q['job_s']:.2f} | "
        f"{q['job_entities_per_s']:,.0f} |",
        f"| (c) floor: paging only | {q['floor_s']:.2f} | |",
        "",
        f"b/a = {q['ratio_job_to_original']:.2f}, b/c = {q['ratio_job_to_floor']:.2f}.",
        "",
        "## 2. Scaling",
        "",
        "| entities | job (s) | original (s) | floor (s) | job s per 100k |",
        "| ---: | ---: | ---: | ---: | ---: |",
        *(
            f"| {r['entities']:,} | {r['job_s']:.2f} | {r['original_s']:.2f} | "
            f"{r['floor_s']:.2f} | "
            f"{r['job_s'] / r['entities'] * 100_000:.2f} |"
            for r in results["scaling"]
        ),
        "",
        "## 3. Orchestration engine (trivial jobs: two one-day ranges of an empty table)",
        "",
        f"Lone jobs, one after another ({e['lone_jobs']}): p50 {e['lone_p50_ms']:.1f} ms, "
        f"p99 {e['lone_p99_ms']:.1f} ms.",
        f"{e['burst_jobs']} jobs at once: {e['jobs_per_s']:.1f} jobs/s, submit-to-Completed p50 "
        f"{e['burst_p50_ms']:.0f} ms, p99 {e['burst_p99_ms']:.0f} ms (from the host's own",
        "timestamps; submitted by 64 concurrent clients).",
        "",
        f"## 4. Status endpoint: {s['clients']} keep-alive pollers for {s['seconds']:.0f} s",
        "",
        f"{s['requests']:,} requests, {s['requests_per_s']:,.0f} req/s, p50 {s['p50_ms']:.1f} ms, "
        f"p99 {s['p99_ms']:.1f} ms, {s['errors']} errors.",
        "",
        f"## 5. Memory after {mem['jobs']:,} completed jobs",
        "",
        f"Peak RSS of the local host: {mem['peak_rss_mib']:.0f} MiB; database: "
        f"{mem['database_mib']:.1f} MiB.",
        "",
    ]
    return "\n".join(lines)


def write_report(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmarks.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "benchmarks.md").write_text(markdown(results))
