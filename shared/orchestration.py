"""The audit job: fan a date range out into per-range activities and fan the results back in.

The orchestrator replays from history, so everything here is deterministic: the plan (range
size, window, retry policy) travels in the input, decided once by the client function.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from datetime import date
from itertools import islice

import azure.durable_functions as df

from shared.partitions import key_ranges
from shared.retry import BackoffRetryOptions
from shared.settings import Settings

ACTIVITY = "query-storage-account-activity-function"
ORCHESTRATOR = "orchestrator-function"
log = logging.getLogger(__name__)


def job_input(start: date, end: date, settings: Settings) -> dict:
    """The orchestration input: the range and the plan, fixed at submit time."""
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "partitionDays": settings.partition_days,
        "maxInFlight": settings.max_in_flight,
        "retry": {
            "firstIntervalMs": settings.retry_first_interval_ms,
            "attempts": settings.retry_attempts,
            "backoff": settings.retry_backoff,
            "maxIntervalMs": settings.retry_max_interval_ms,
        },
    }


def progress(done: int, total: int) -> dict:
    return {"done": done, "total": total}


def audit_orchestrator(context: df.DurableOrchestrationContext) -> Generator:
    """Count distinct identification numbers over the job's range, at most N ranges at a time."""
    job = context.get_input()
    ranges = key_ranges(
        date.fromisoformat(job["start"]), date.fromisoformat(job["end"]), job["partitionDays"]
    )
    policy = job["retry"]
    options = BackoffRetryOptions(
        policy["firstIntervalMs"], policy["attempts"], policy["backoff"], policy["maxIntervalMs"]
    )
    total = len(ranges)
    context.set_custom_status(progress(0, total))

    def schedule(key_range: dict):
        return context.call_activity_with_retry(ACTIVITY, options, key_range)

    waiting = iter(ranges)
    running = [schedule(r) for r in islice(waiting, max(1, job["maxInFlight"]))]
    results: list[list[str]] = []  # merged once at the end, not again on every replay
    while running:
        finished = yield context.task_any(running)
        running.remove(finished)
        results.append((yield finished))  # re-raises when the range failed after its retries
        context.set_custom_status(progress(len(results), total))
        running.extend(schedule(r) for r in islice(waiting, 1))
    distinct = set().union(*results)
    if not context.is_replaying:
        log.info(
            "audit job %s counted %d ids over %d ranges", context.instance_id, len(distinct), total
        )
    return len(distinct)
