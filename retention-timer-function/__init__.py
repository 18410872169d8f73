"""Purge finished jobs past JOB_RETENTION_DAYS: adapts the timer and durable client bindings to
shared.retention."""

import azure.durable_functions as df
import azure.functions as func

from shared.range_results import default_results
from shared.retention import purge_expired
from shared.settings import Settings


async def main(timer: func.TimerRequest, starter: str) -> None:
    days = Settings.from_env().job_retention_days
    client = df.DurableOrchestrationClient(starter)
    await purge_expired(client, days, default_results().delete_job)
