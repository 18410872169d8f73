"""The audit job: fan a date range out into per-range activities and fan the results back in.

The orchestrator replays from history, so everything here is deterministic: the plan (range
size, window, retry policy) travels in the input, decided once by the client function.
The history stays small whatever the data: ids live in blobs (shared.range_results), and a job
has at most MAX_ACTIVITIES_PER_JOB range tasks.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Generator
from datetime import date
from itertools import islice
from typing import TypedDict

import azure.durable_functions as df

from shared.partitions import KeyRange, key_ranges
from shared.range_results import RangeResult
from shared.retry import BackoffRetryOptions
from shared.settings import Settings

ACTIVITY = "query-storage-account-activity-function"
COUNT_ACTIVITY = "count-distinct-activity-function"
CLEANUP_ACTIVITY = "delete-range-results-activity-function"
ORCHESTRATOR = "orchestrator-function"
log = logging.getLogger(__name__)


class RetryPlan(TypedDict):
    firstIntervalMs: int
    attempts: int
    backoff: float
    maxIntervalMs: int


class JobInput(TypedDict):
    """The orchestration input: the range and the plan, fixed at submit time."""

    start: str
    end: str
    daysPerActivity: int
    maxInFlight: int
    retry: RetryPlan


class RangeTask(KeyRange):
    """One activity's input: its key range and where its result goes."""

    job: str
    index: int


def days_per_activity(start: date, end: date, settings: Settings) -> int:
    """PARTITION_DAYS, widened so that no job has more than MAX_ACTIVITIES_PER_JOB activities.

    Each activity is one task in the job's history, and the history is replayed on every
    episode: a bounded number of tasks keeps a 366-day job's orchestration as cheap as a
    40-day one's. A wider range costs the table nothing: it reads the same partitions, in order.
    """
    days = (end - start).days + 1
    ranges = math.ceil(days / settings.partition_days)
    return settings.partition_days * math.ceil(ranges / settings.max_activities_per_job)


def job_input(start: date, end: date, settings: Settings) -> JobInput:
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "daysPerActivity": days_per_activity(start, end, settings),
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
    """Count distinct identification numbers over the job's range, at most N ranges at a time.

    Each range's activity stores its ids in a blob and returns only the blob's name; a last
    activity counts the distinct ids over those blobs, and the blobs are deleted when the job
    completes or fails (after the ranges still running have ended). So the history holds names
    and counts, never ids.
    """
    job: JobInput = context.get_input()
    ranges = key_ranges(
        date.fromisoformat(job["start"]), date.fromisoformat(job["end"]), job["daysPerActivity"]
    )
    policy = job["retry"]
    options = BackoffRetryOptions(
        policy["firstIntervalMs"], policy["attempts"], policy["backoff"], policy["maxIntervalMs"]
    )
    total = len(ranges)
    context.set_custom_status(progress(0, total))

    def schedule(index: int, key_range: KeyRange):
        task: RangeTask = {**key_range, "job": context.instance_id, "index": index}
        return context.call_activity_with_retry(ACTIVITY, options, task)

    waiting = iter(enumerate(ranges))
    running = [schedule(i, r) for i, r in islice(waiting, max(1, job["maxInFlight"]))]
    results: list[RangeResult] = []
    try:
        while running:
            finished = yield context.task_any(running)
            running.remove(finished)
            results.append((yield finished))  # re-raises when the range failed after retries
            context.set_custom_status(progress(len(results), total))
            running.extend(schedule(i, r) for i, r in islice(waiting, 1))
        stored = [r for r in results if r["blob"]]
        if len(stored) > 1:
            blobs = sorted(r["blob"] for r in stored)
            count = yield context.call_activity_with_retry(COUNT_ACTIVITY, options, blobs)
        else:  # no blob, or one: its ids are already distinct, no count activity needed
            count = stored[0]["ids"] if stored else 0
    except Exception:
        yield from _settle(context, running)  # their blobs too, before the clean-up
        yield from _delete_results(context, options)
        raise
    if stored:
        yield from _delete_results(context, options)
    if not context.is_replaying:
        log.info("audit job %s counted %d ids over %d ranges", context.instance_id, count, total)
    return count


def _settle(context: df.DurableOrchestrationContext, running: list):
    """Wait for the ranges still running when the job failed, whatever their outcome."""
    while running:
        finished = yield context.task_any(running)
        running.remove(finished)


def _delete_results(context: df.DurableOrchestrationContext, options: df.RetryOptions):
    """Best effort: a job's answer never depends on its clean-up; retention removes leftovers."""
    try:
        yield context.call_activity_with_retry(CLEANUP_ACTIVITY, options, context.instance_id)
    except Exception:  # noqa: BLE001 - recorded in the history, so replay takes the same path
        if not context.is_replaying:
            log.warning("could not delete the range results of job %s", context.instance_id)
