"""JSON responses: the only way the HTTP functions answer, so every answer has one shape."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import azure.functions as func

JSON = "application/json"


def json_response(
    status: int, body: Any, headers: Mapping[str, str] | None = None
) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body), status_code=status, headers=dict(headers or {}), mimetype=JSON
    )


def error_response(
    status: int, message: str, headers: Mapping[str, str] | None = None
) -> func.HttpResponse:
    return json_response(status, {"error": message}, headers)
