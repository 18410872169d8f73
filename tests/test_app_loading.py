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
    (root / "host.json").write_text('{"version": "2.0"}')
    folder = root / "hello"
    folder.mkdir()
    text = function_json if isinstance(function_json, str) else json.dumps(function_json)
    (folder / "function.json").write_text(text)
    (folder / "__init__.py").write_text(code)
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
    ("function_json", "code", "message"),
    [
        ("{not json", GOOD_CODE, "hello/function.json: invalid JSON"),
        (binding_with(type="queueTriggerX"), GOOD_CODE, "unknown binding type 'queueTriggerX'"),
        (binding_with(name=""), GOOD_CODE, "missing binding 'name'"),
        (HTTP_FUNCTION, "def main(request):\n    return 'ok'\n", "no parameter for binding(s) req"),
        (
            HTTP_FUNCTION,
            "def main(req, extra):\n    return 1\n",
            "extra of main() match no binding",
        ),
        (HTTP_FUNCTION, "import not_a_module\n", "hello: import failed: ModuleNotFoundError"),
        (HTTP_FUNCTION, "x = 1\n", "no callable 'main'"),
        ({"bindings": []}, GOOD_CODE, "'bindings' must be a non-empty list"),
    ],
)
def test_a_broken_app_is_refused_naming_the_folder_and_the_problem(
    tmp_path, function_json, code, message
):
    result = load(make_app(tmp_path, function_json, code))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


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
