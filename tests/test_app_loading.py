"""Loading an app: broken ones are refused with a clear message; route templates convert."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devhost.http.triggers import route_paths
from tests.support import ROOT, HostProcess, hosted
from tests.test_engine_conformance import APP as CONFORMANCE
from tests.test_engine_conformance import finished, start, webhook

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


# ---- durable functions in error: what starting or calling one does
ORCHESTRATOR = {
    "bindings": [{"name": "context", "type": "orchestrationTrigger", "direction": "in"}]
}
ACTIVITY = {"bindings": [{"name": "name", "type": "activityTrigger", "direction": "in"}]}


def calls(activity: str) -> str:
    return (
        "import azure.durable_functions as df\n\n\n"
        "def orchestrator(context):\n"
        f"    return (yield context.call_activity({activity!r}, 'you'))\n\n\n"
        "main = df.Orchestrator.create(orchestrator)\n"
    )


DURABLE_APP = {
    # what serves: an HTTP function, the conformance app's starter, an orchestration
    "ok": (HTTP_FUNCTION, GOOD_CODE),
    "Good": (ORCHESTRATOR, calls("Greet")),
    "Greet": (ACTIVITY, "def main(name: str) -> str:\n    return f'Hello {name}!'\n"),
    # code that does not load: listed, each call fails
    "BrokenOrchestrator": (ORCHESTRATOR, "import not_a_module\n"),
    "BrokenActivity": (ACTIVITY, "import not_a_module\n"),
    "CallsBroken": (ORCHESTRATOR, calls("BrokenActivity")),
    # an unusable function.json: not registered at all
    "UnusableOrchestrator": ("{not json", GOOD_CODE),
    "UnusableActivity": ({"bindings": [{"type": "activityTrigger", "direction": "in"}]}, ""),
    "CallsUnusable": (ORCHESTRATOR, calls("UnusableActivity")),
}


@pytest.fixture(scope="module", params=["1", "2"], ids=["in-process", "worker-processes"])
def durable_host(request, tmp_path_factory) -> HostProcess:
    root = tmp_path_factory.mktemp("durable-in-error")
    app = root / "app"
    shutil.copytree(CONFORMANCE / "starter", app / "starter")
    (app / "host.json").write_text((CONFORMANCE / "host.json").read_text())
    for name, (spec, code) in DURABLE_APP.items():
        (app / name).mkdir()
        (app / name / "function.json").write_text(
            spec if isinstance(spec, str) else json.dumps(spec)
        )
        (app / name / "__init__.py").write_text(code)
    with hosted(app, root / "data", {"FUNCTIONS_WORKER_PROCESS_COUNT": request.param}) as host:
        yield host


def assert_the_rest_serves(host: HostProcess) -> None:
    assert host.get("/api/ok").text == "ok"
    response = start(host, "Good")
    assert response.status_code == 202, response.text
    status = finished(host, response.json()["id"])
    assert (status["runtimeStatus"], status["output"]) == ("Completed", "Hello you!")


def failed_output(host: HostProcess, name: str) -> str:
    """Start `name` as the SDK's start_new does; the instance must fail: its output."""
    response = start(host, name)
    assert response.status_code == 202, response.text
    status = finished(host, response.json()["id"])
    assert status["runtimeStatus"] == "Failed", status
    return status["output"]


def test_durable_functions_in_error_are_named_at_start(durable_host):
    logged = durable_host.logs()  # printed before the host serves
    for name, problem in [
        ("BrokenOrchestrator", "import failed: ModuleNotFoundError"),
        ("BrokenActivity", "import failed: ModuleNotFoundError"),
        ("UnusableOrchestrator", "UnusableOrchestrator/function.json: invalid JSON"),
        ("UnusableActivity", "missing binding 'name'"),
    ]:
        line = next(
            (x for x in logged.splitlines() if f"The '{name}' function is in error: " in x), ""
        )
        assert problem in line, (name, logged[-2000:])
    assert "Traceback" not in logged


def test_an_orchestrator_whose_code_does_not_load_fails_each_instance(durable_host):
    """As in Azure: the worker could not load it, so the host still has the orchestrator and
    accepts the start; each run fails, and the instance fails with the load error."""
    output = failed_output(durable_host, "BrokenOrchestrator")
    assert output.startswith("Orchestrator function 'BrokenOrchestrator' failed: ")
    assert "Function 'BrokenOrchestrator' failed to load: " in output
    assert "ModuleNotFoundError: No module named 'not_a_module'" in output
    assert_the_rest_serves(durable_host)


def test_an_orchestrator_that_is_not_registered_cannot_be_started(durable_host):
    """An unusable function.json leaves it out, so the start is refused with the extension's
    400 (its StartNewAsync check), which the SDK's start_new raises."""
    response = start(durable_host, "UnusableOrchestrator")
    assert response.status_code == 400
    assert response.json()["error"].startswith(
        "The function 'UnusableOrchestrator' doesn't exist, is disabled, or is not an "
        "orchestrator function."
    )
    direct = webhook(durable_host, "POST", "orchestrators/UnusableOrchestrator")
    assert direct.status_code == 400
    listed = webhook(durable_host, "GET", "instances").json()
    assert all(s["name"] != "UnusableOrchestrator" for s in listed)  # nothing was created
    assert_the_rest_serves(durable_host)


def test_an_activity_whose_code_does_not_load_fails_its_caller(durable_host):
    output = failed_output(durable_host, "CallsBroken")
    assert output.startswith("Orchestrator function 'CallsBroken' failed: ")
    assert "Activity function 'BrokenActivity' failed: FunctionLoadError: " in output
    assert "Function 'BrokenActivity' failed to load: " in output
    assert "ModuleNotFoundError: No module named 'not_a_module'" in output
    assert_the_rest_serves(durable_host)


def test_an_activity_that_is_not_registered_fails_its_caller_naming_the_known_ones(durable_host):
    """The extension's words for an activity it does not know, known ones listed."""
    output = failed_output(durable_host, "CallsUnusable")
    assert output.startswith(
        "Orchestrator function 'CallsUnusable' failed: The function 'UnusableActivity' doesn't "
        "exist, is disabled, or is not an activity function. Additional info: The following are "
        "the known activity functions: 'BrokenActivity', 'Greet'."
    )
    assert_the_rest_serves(durable_host)


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
