"""GET /api/nap/{seconds}: a sync HTTP function (the host's thread pool) that sleeps that long."""

import time

import azure.functions as func


def main(req: func.HttpRequest) -> func.HttpResponse:
    time.sleep(float(req.route_params["seconds"]))
    return func.HttpResponse("awake")
