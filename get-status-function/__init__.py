"""Report on (GET) or cancel (DELETE) an audit job: adapts the HTTP trigger and durable client
binding to shared.jobs."""

import azure.durable_functions as df
import azure.functions as func

from shared import jobs
from shared.settings import Settings


async def main(req: func.HttpRequest, starter: str) -> func.HttpResponse:
    answer = jobs.cancel_job if req.method == "DELETE" else jobs.job_status
    return await answer(req, df.DurableOrchestrationClient(starter), Settings.from_env())
