"""The client side of entities through the SDK: GET reads the state, POST ?op= signals."""

import json

import azure.durable_functions as df
import azure.functions as func


async def main(req: func.HttpRequest, client: str) -> func.HttpResponse:
    durable = df.DurableOrchestrationClient(client)
    entity = df.EntityId(req.route_params["name"], req.route_params["key"])
    if req.method == "POST":
        body = req.get_body()
        await durable.signal_entity(entity, req.params["op"], json.loads(body) if body else None)
        return func.HttpResponse(status_code=202)
    state = await durable.read_entity_state(entity)
    body = {"exists": state.entity_exists, "state": state.entity_state}
    return func.HttpResponse(json.dumps(body), mimetype="application/json")
