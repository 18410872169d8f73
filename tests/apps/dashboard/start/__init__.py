"""HTTP starter: POST /api/start/{name}[/{id}] with a JSON body as the orchestration input."""

import json

import azure.durable_functions as df
import azure.functions as func


async def main(req: func.HttpRequest, client: str, res: func.Out[func.HttpResponse]) -> None:
    durable = df.DurableOrchestrationClient(client)
    body = req.get_body()
    try:
        instance_id = await durable.start_new(
            req.route_params["name"], req.route_params.get("id"), json.loads(body) if body else None
        )
    except Exception as error:
        res.set(
            func.HttpResponse(
                json.dumps({"error": str(error)}), status_code=400, mimetype="application/json"
            )
        )
        return
    res.set(durable.create_check_status_response(req, instance_id))
