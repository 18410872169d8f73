"""host.json and every function.json: schema-valid, bindings match code, routes do not collide."""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import jsonschema
import pytest

from devhost.functions.catalog import KNOWN_TYPES, load_catalog
from devhost.functions.invoker import load_entry
from devhost.http.triggers import route_paths
from tests.support import ROOT

SCHEMAS = Path(__file__).parent / "schemas"
FUNCTION_JSONS = sorted(ROOT.glob("*/function.json"))


def schema(name: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads((SCHEMAS / name).read_text()))


def test_host_json_is_valid_and_says_what_production_needs():
    host = json.loads((ROOT / "host.json").read_text())
    assert list(schema("host.json.schema.json").iter_errors(host)) == []
    assert host["version"] == "2.0"
    assert host["extensionBundle"] == {
        "id": "Microsoft.Azure.Functions.ExtensionBundle",
        "version": "[4.*, 5.0.0)",
    }
    assert host["extensions"]["http"]["routePrefix"] == "api"
    assert host["extensions"]["durableTask"]["hubName"]
    hours, minutes, _ = (int(x) for x in host["functionTimeout"].split(":"))
    assert hours * 60 + minutes <= 10  # fits the Consumption plan's maximum
    sampling = host["logging"]["applicationInsights"]["samplingSettings"]
    assert sampling["isEnabled"] and "Exception" in sampling["excludedTypes"]  # failures kept


@pytest.mark.parametrize("path", FUNCTION_JSONS, ids=lambda p: p.parent.name)
def test_function_json_is_schema_valid_with_known_binding_types(path):
    spec = json.loads(path.read_text())
    assert list(schema("function.json.schema.json").iter_errors(spec)) == []
    assert {b["type"] for b in spec["bindings"]} <= KNOWN_TYPES


def test_seven_functions_whose_bindings_match_their_entry_points(monkeypatch):
    monkeypatch.setenv("JOB_RETENTION_SCHEDULE", "0 0 3 * * *")  # an app setting, as in infra/
    _, functions, in_error = load_catalog(ROOT)
    assert in_error == {}
    assert sorted(functions) == [
        "client-function",
        "count-distinct-activity-function",
        "delete-range-results-activity-function",
        "get-status-function",
        "orchestrator-function",
        "query-storage-account-activity-function",
        "retention-timer-function",
    ]
    for spec in functions.values():
        load_entry(spec, ROOT)  # raises AppLoadError on any binding/parameter mismatch


def test_http_functions_need_a_key_and_their_routes_do_not_collide(monkeypatch):
    monkeypatch.setenv("JOB_RETENTION_SCHEDULE", "0 0 3 * * *")
    _, functions, in_error = load_catalog(ROOT)
    assert in_error == {}
    http = [s for s in functions.values() if s.kind == "http"]
    assert {s.trigger["authLevel"] for s in http} == {"function"}
    routes = {s.name: route_paths("api", s.trigger["route"]) for s in http}
    for (a, paths_a), (b, paths_b) in combinations(routes.items(), 2):
        assert not set(paths_a) & set(paths_b), (a, b)
    assert routes["client-function"] == ["/api/submit/query"]
    assert routes["get-status-function"] == ["/api/status/{id}"]
