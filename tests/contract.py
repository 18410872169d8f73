"""Check real responses against docs/openapi.yaml (the API contract) with jsonschema."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path

import jsonschema
import requests
import yaml

ROOT = Path(__file__).resolve().parent.parent


@cache
def document() -> dict:
    return yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())


def _json_schema(node):
    """OpenAPI 3.0 schema -> JSON Schema: resolve $ref, turn `nullable` into a null type."""
    if isinstance(node, list):
        return [_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = document()
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return _json_schema(target)
    out = {k: _json_schema(v) for k, v in node.items() if k not in ("nullable", "description")}
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


def assert_matches(method: str, path: str, response: requests.Response) -> None:
    """The response's status is documented for the operation and its body fits the schema."""
    operation = document()["paths"][path][method.lower()]
    responses = operation["responses"]
    assert str(response.status_code) in responses, f"{response.status_code} is not documented"
    documented = _json_schema(copy.deepcopy(responses[str(response.status_code)]))
    content = documented.get("content", {}).get("application/json")
    if content:
        assert response.headers["Content-Type"].startswith("application/json")
        jsonschema.validate(response.json(), content["schema"])
    for header in documented.get("headers", {}):
        assert header in response.headers, f"missing documented header {header}"
