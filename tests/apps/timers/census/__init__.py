"""A timer with a durable client, as a retention job has: it lists the task hub's instances."""

import azure.durable_functions as df
import azure.functions as func
from timer_log import record


async def main(timer: func.TimerRequest, client: str) -> None:
    instances = await df.DurableOrchestrationClient(client).get_status_all()
    record("census", timer, instances=len(instances))
