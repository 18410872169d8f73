"""Submit an audit job: adapts the HTTP trigger and durable client binding to shared.jobs."""

import azure.durable_functions as df
import azure.functions as func

from shared import jobs
from shared.settings import Settings


async def main(req: func.HttpRequest, starter: str) -> func.HttpResponse:
    return await jobs.submit(req, df.DurableOrchestrationClient(starter), Settings.from_env())
