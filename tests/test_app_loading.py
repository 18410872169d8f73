"""Loading an app: broken ones are refused with a clear message; route templates convert."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from devhost.http.triggers import route_paths
from tests.support import ROOT

HTTP_FUNCTION = {
    "bindings": [
        {"authLevel": "anonymous", "type": "httpTrigger", "direction": "in", "name": "req"},
        {"type": "http", "direction": "out", "name": "$return"},
    ]
}
GOOD_CODE = "def main(req):\n    return 'ok'\n"


def make_app(root: Path, function_json, code: str = GOOD_CODE) -> Path:
    """An app with a good function `ok` and a function `hello` as given."""
    (root / "host.json").write_text('{"version": "2.0"}')
    for name, spec, source in (
        ("ok", HTTP_FUNCTION, GOOD_CODE),
        ("hello", function_json, code),
    ):
        folder = root / name
        folder.mkdir()
        text = spec if isinstance(spec, str) else json.dumps(spec)
        (folder / "function.json").write_text(text)
        (folder / "__init__.py").write_text(source)
    return root


def load(app: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "devhost", "--app", str(app), "--port", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def binding_with(**changes) -> dict:
    spec = json.loads(json.dumps(HTTP_FUNCTION))
    spec["bindings"][0].update(changes)
    return spec


@pytest.mark.parametrize(
    ("function_json", "code", "message", "answer"),
    [
        ("{not json", GOOD_CODE, "hello/function.json: invalid JSON", 404),
        (binding_with(type="queueTriggerX"), GOOD_CODE, "'queueTriggerX' is not registered", 404),
        (binding_with(name=""), GOOD_CODE, "missing binding 'name'", 404),
        ({"bindings": []}, GOOD_CODE, "'bindings' must be a non-empty list", 404),
        (
            HTTP_FUNCTION,
            "def main(request):\n    return 'ok'\n",
            "no parameter for binding(s) req",
            500,
        ),
        (HTTP_FUNCTION, "def main(req, extra):\n    return 1\n", "extra of main() match", 500),
        (HTTP_FUNCTION, "import not_a_module\n", "import failed: ModuleNotFoundError", 500),
        (HTTP_FUNCTION, "x = 1\n", "no callable 'main'", 500),
    ],
)
def test_a_function_in_error_is_reported_and_the_rest_serve(
    tmp_path, start_host, function_json, code, message, answer
):
    """As Core Tools: an unusable function.json leaves the function out (404); code that does
    not load leaves it listed, and each call fails (500)."""
    (tmp_path / "app").mkdir()
    host = start_host(app=make_app(tmp_path / "app", function_json, code))
    assert host.get("/api/ok").text == "ok"
    assert host.get("/api/hello").status_code == answer
    logged = host.logs()
    assert "The 'hello' function is in error: " in logged and message in logged
    assert "Traceback" not in logged


def test_a_folder_without_host_json_is_not_an_app(tmp_path):
    result = load(tmp_path)
    assert result.returncode == 2 and "no host.json" in result.stderr


@pytest.mark.parametrize(
    ("prefix", "template", "paths"),
    [
        ("api", "submit/query", ["/api/submit/query"]),
        ("api", "status/{id}", ["/api/status/{id}"]),
        ("", "items/{id:int}", [r"/items/{id:-?\d+}"]),
        ("api", "start/{name}/{id?}", ["/api/start/{name}/{id}", "/api/start/{name}"]),
        ("api", "files/{*path}", ["/api/files/{path:.*}"]),
    ],
)
def test_route_templates(prefix, template, paths):
    assert route_paths(prefix, template) == paths
