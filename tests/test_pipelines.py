"""The release pipelines cannot run here, so everything checkable about them is checked."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support import ROOT

BIN = Path(sys.executable).parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_azure_pipelines_is_schema_valid():
    result = tool(
        "check-jsonschema",
        "--builtin-schema",
        "vendor.azure-pipelines",
        "--data-transform",
        "azure-pipelines",
        "--regex-variant",
        "nonunicode",
        "azure-pipelines.yml",
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "schema", ["vendor.github-workflows", "custom.github-workflows-require-timeout"]
)
def test_workflows_are_schema_valid(schema):
    result = tool("check-jsonschema", "--builtin-schema", schema, *map(str, WORKFLOWS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing():
    result = tool("zizmor", "--offline", ".github/workflows")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings" in result.stdout + result.stderr


def test_azure_pipeline_tests_packages_and_deploys_the_zip():
    pipeline = load(ROOT / "azure-pipelines.yml")
    assert pipeline["trigger"]["branches"]["include"] == ["main"]
    build, deploy = pipeline["stages"]
    scripts = [s.get("script") for s in build["jobs"][0]["steps"]]
    assert scripts.index("make test") < scripts.index("make package")
    job = deploy["jobs"][0]
    assert job["environment"] and "runOnce" in job["strategy"]
    task = job["strategy"]["runOnce"]["deploy"]["steps"][-1]
    assert task["task"] == "AzureFunctionApp@2"
    inputs = task["inputs"]
    assert inputs["connectedServiceNameARM"] == "$(azureServiceConnection)"
    assert inputs["appName"] == "$(functionAppName)"
    assert inputs["package"].endswith("/package/audit-api.zip")
    # Flex Consumption (what infra/ creates) needs the Linux app type and the Flex switch; the
    # Kudu zip-deploy inputs would need a storage key that identity-based storage removes
    assert inputs["appType"] == "functionAppLinux"
    assert inputs["isFlexConsumption"] is True
    assert not {"deploymentMethod", "runtimeStack"} & set(inputs)
    assert {"azureServiceConnection", "functionAppName"} <= set(pipeline["variables"])


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflows_pin_actions_and_limit_permissions_and_time(path):
    workflow = load(path)
    assert "permissions" in workflow
    for name, job in workflow["jobs"].items():
        if "uses" in job:  # a reusable workflow of this repository: its jobs are checked there
            assert job["uses"].startswith("$/.github/workflows/"), name
            continue
        assert "timeout-minutes" in job, name
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
        text = yaml.safe_dump(job)
        assert "secrets." not in text  # OIDC and variables only: nothing secret to leak


def triggers(workflow: dict) -> dict:
    return workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads on: as True


def test_a_push_to_main_runs_the_tests_once():
    ci = load(ROOT / ".github" / "workflows" / "ci.yml")
    assert set(triggers(ci)) == {"pull_request", "workflow_call"}
    runs = [s.get("run") for s in ci["jobs"]["test"]["steps"] if "run" in s]
    assert runs[-1] == "make test" and runs[:-1] == [
        "sudo apt-get update && sudo apt-get install -y --no-install-recommends tmux"
    ]
    [compile_infra] = [s["run"] for s in ci["jobs"]["bicep"]["steps"] if "run" in s]
    assert "az bicep build --file infra/main.bicep" in compile_infra
    deploy = load(ROOT / ".github" / "workflows" / "deploy.yml")
    called = deploy["jobs"]["test"]["uses"]  # GitHub's self-repository form: $/ and the path
    assert called == "$/.github/workflows/ci.yml" and (ROOT / called[2:]).is_file()
    assert deploy["jobs"]["build"]["needs"] == "test"
    runs = [s["run"] for job in deploy["jobs"].values() for s in job.get("steps", []) if "run" in s]
    assert runs == ["make package"]


def test_deploy_workflow_builds_with_the_script_and_signs_in_with_oidc():
    workflow = load(ROOT / ".github" / "workflows" / "deploy.yml")
    assert set(triggers(workflow)) == {"push", "workflow_dispatch"}
    assert workflow["permissions"] == {}
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    assert build["permissions"] == {"contents": "read"}
    assert deploy["permissions"] == {"id-token": "write"}
    assert deploy["environment"]["name"] == "production"
    uses = [s["uses"].split("@")[0] for s in deploy["steps"]]
    assert uses == ["actions/download-artifact", "azure/login", "Azure/functions-action"]
    assert deploy["steps"][-1]["with"]["package"] == "dist/audit-api.zip"
    assert deploy["steps"][-1]["with"]["remote-build"] is False  # the zip holds its wheels
