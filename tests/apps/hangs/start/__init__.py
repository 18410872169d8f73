"""POST /api/start/{seconds}: an orchestration whose one activity sleeps that long."""

import azure.durable_functions as df
import azure.functions as func


async def main(req: func.HttpRequest, client: str) -> func.HttpResponse:
    durable = df.DurableOrchestrationClient(client)
    seconds = float(req.route_params["seconds"])
    instance_id = await durable.start_new("HangTwice", None, seconds)
    return durable.create_check_status_response(req, instance_id)
