"""An asynchronous HTTP API to poll: 202 with a Location n times, then the answer."""

import json

import azure.functions as func


def main(req: func.HttpRequest) -> func.HttpResponse:
    left = int(req.route_params["n"])
    if left > 0:
        headers = {"Location": f"/api/poll/{left - 1}", "Retry-After": "0"}
        return func.HttpResponse(status_code=202, headers=headers)
    body = {"done": True, "method": req.method, "body": req.get_body().decode() or None}
    return func.HttpResponse(
        json.dumps(body), mimetype="application/json", headers={"X-Step": "last"}
    )
