"""Retention: finished jobs older than JOB_RETENTION_DAYS are purged from the task hub.

Without it the task hub (Azure Storage tables and blobs, or the local store) grows with every
job forever. Each finished job is purged with the durable client's purge API, and the range
blobs a canceled or failed job left behind go with it. An Idempotency-Key names its job by id,
so the key is free again once the job is purged. Running and suspended jobs are never touched.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus

log = logging.getLogger(__name__)
FINISHED = [
    OrchestrationRuntimeStatus.Completed,
    OrchestrationRuntimeStatus.Failed,
    OrchestrationRuntimeStatus.Terminated,
    OrchestrationRuntimeStatus.Canceled,
]
MAX_PAGES = 100  # a run purges at most this many pages of (100) jobs; the next run goes on


async def purge_expired(
    client: Any, days: int, delete_blobs: Callable[[str], int], now: datetime | None = None
) -> int:
    """Purge the finished jobs created more than `days` ago; returns how many. A job whose
    purge fails is logged and left for the next run; the others go on."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    purged, failed = 0, set()
    for _ in range(MAX_PAGES):
        expired = await client.get_status_by(created_time_to=cutoff, runtime_status=FINISHED)
        expired = [s for s in expired if s.instance_id not in failed]
        if not expired:
            break
        for status in expired:
            try:  # blobs first: a purged job's blobs would have nothing left to name them
                await asyncio.to_thread(delete_blobs, status.instance_id)
                await client.purge_instance_history(status.instance_id)
                purged += 1
            except Exception:
                log.exception("retention: could not purge %s", status.instance_id)
                failed.add(status.instance_id)
    if purged:
        log.info("retention: purged %d finished job(s) created before %s", purged, cutoff)
    return purged
