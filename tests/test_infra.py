"""infra/ cannot be deployed here, so everything checkable offline is checked.

Every Bicep file parses (pycep), checkov finds nothing, and the facts checkov does not know hold:
Flex deployment storage with the identity, shared keys off, no secret in any app setting, every
role assignment on one resource, and every app setting one the app or the platform reads.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pycep import BicepParser

from shared.range_results import CONTAINER
from tests.support import ROOT

INFRA = ROOT / "infra"
BICEP = sorted(INFRA.rglob("*.bicep"))
CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"
# Read by the platform, not by the app's code: the Functions host (AzureWebJobsStorage__*,
# Application Insights), the Python worker (its thread pool) and azure-identity, which picks a
# user-assigned identity by client id.
PLATFORM = re.compile(
    r"AzureWebJobsStorage__\w+|APPLICATIONINSIGHTS_(CONNECTION|AUTHENTICATION)_STRING"
    r"|AZURE_CLIENT_ID|PYTHON_THREADPOOL_THREAD_COUNT"
)


def parse(path: Path) -> dict:
    return BicepParser().parse(text=path.read_text(encoding="utf-8"))


def body(resource: dict) -> dict:
    """A resource's own properties, under any loop or condition wrappers pycep adds."""
    config = resource["config"]
    while "loop_type" in config or "condition" in config:
        config = config["config"]
    return config


def resources(kind: str) -> Iterator[tuple[Path, str, dict, dict]]:
    """(file, symbol, body, parsed file) of every declared (not `existing`) resource of a type."""
    for path in BICEP:
        parsed = parse(path)
        for symbol, resource in (parsed.get("resources") or {}).items():
            if resource["type"] == kind and not resource["existing"]:
                yield path, symbol, body(resource), parsed


def dicts(node: Any) -> Iterator[dict]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from dicts(value)
    elif isinstance(node, list):
        for value in node:
            yield from dicts(value)


def app_settings() -> dict[str, Any]:
    """Every {name, value} the function app can be given, from the one file that writes them."""
    writers = [p for p in BICEP if "appSettings" in p.read_text(encoding="utf-8")]
    assert writers == [INFRA / "app" / "api.bicep"]
    settings = {}
    for variable in parse(writers[0])["variables"].values():
        for item in dicts(variable["value"]):
            if set(item) == {"name", "value"} and isinstance(item["name"], str):
                settings[item["name"]] = item["value"]
    return settings


def settings_read_by_the_app() -> set[str]:
    """Names the app's own code reads from the environment (env.get, os.environ, _int), and
    the %NAME% app settings its function.json files give the host to resolve."""
    names = set()
    for binding_file in ROOT.glob("*-function/function.json"):
        names.update(re.findall(r"%(\w+)%", binding_file.read_text(encoding="utf-8")))
    sources = [*(ROOT / "shared").glob("*.py"), *ROOT.glob("*-function/__init__.py")]
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func, args = node.func, node.args
            receiver = getattr(func, "value", None)
            environment = isinstance(receiver, ast.Name) and receiver.id == "env"
            environment |= isinstance(receiver, ast.Attribute) and receiver.attr == "environ"
            reads_env = getattr(func, "attr", "") in ("get", "getenv") and environment
            position = 0 if reads_env else 1 if getattr(func, "id", "") == "_int" else None
            if position is None or len(args) <= position:
                continue
            if isinstance(args[position], ast.Constant) and isinstance(args[position].value, str):
                names.add(args[position].value)
    return names


@pytest.mark.parametrize("path", BICEP, ids=lambda p: str(p.relative_to(INFRA)))
def test_every_bicep_file_parses(path):
    parsed = parse(path)
    assert parsed.get("resources") or parsed.get("modules"), path


def test_checkov_finds_nothing_and_every_skip_says_why():
    assert CHECKOV.exists(), "make test installs checkov into .tools/checkov"
    result = subprocess.run(
        [str(CHECKOV), "-d", "infra", "--framework", "bicep", "--skip-download", "-o", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(result.stdout)
    summary = report["summary"]
    assert summary["failed"] == 0, [c["check_id"] for c in report["results"]["failed_checks"]]
    assert summary["parsing_errors"] == 0
    assert summary["passed"] >= 20  # it really scanned the resources
    assert result.returncode == 0, result.stderr[-2000:]
    for skipped in report["results"]["skipped_checks"]:
        reason = (skipped.get("check_result") or {}).get("suppress_comment", "")
        assert len(reason.strip()) > 10, skipped["check_id"]


def test_the_app_runs_on_flex_consumption_with_identity_deployment_storage():
    plans = [b for _, _, b, _ in resources("Microsoft.Web/serverfarms")]
    assert [p["sku"] for p in plans] == [{"name": "FC1", "tier": "FlexConsumption"}]
    [(_, _, site, _)] = resources("Microsoft.Web/sites")
    assert site["kind"] == "functionapp,linux"
    config = site["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"]["type"] == "UserAssignedIdentity"
    assert set(config["scaleAndConcurrency"]) >= {"instanceMemoryMB", "maximumInstanceCount"}
    assert site["identity"]["type"] == "UserAssigned"
    assert site["properties"]["httpsOnly"] is True


def test_every_storage_account_refuses_shared_keys_and_old_tls():
    [(_, _, account, parsed)] = resources("Microsoft.Storage/storageAccounts")
    properties = account["properties"]
    assert properties["allowBlobPublicAccess"] is False
    assert properties["minimumTlsVersion"] == "TLS1_2"
    assert properties["supportsHttpsTrafficOnly"] is True
    # shared keys: off unless a caller asks, and only the original setup's audit account asks
    assert properties["allowSharedKeyAccess"] == "allowSharedKeyAccess"
    assert parsed["parameters"]["allowSharedKeyAccess"]["default"] is False
    callers = {
        symbol: body(module)["params"]
        for symbol, module in parse(INFRA / "main.bicep")["modules"].items()
        if module["detail"]["path"] == "app/storage.bicep"
    }
    assert "allowSharedKeyAccess" not in callers["storage"]  # the host account: never
    assert callers["auditStorage"]["allowSharedKeyAccess"] == "useAppConfiguration"
    # with the VNet (the default), closed to the internet
    acls = properties["networkAcls"]["defaultAction"]["operator"]["operands"]
    assert (acls["condition"], acls["true_value"]) == ("vnetEnabled", "Deny")


def test_the_vnet_integration_is_what_flex_consumption_needs():
    [(_, _, vnet, _)] = resources("Microsoft.Network/virtualNetworks")
    delegated = [
        d["properties"]["serviceName"]
        for subnet in vnet["properties"]["subnets"]
        for d in subnet["properties"].get("delegations", [])
    ]
    assert delegated == ["Microsoft.App/environments"]
    api = body(parse(INFRA / "main.bicep")["modules"]["api"])
    assert "storageEndpoints" in api["dependsOn"]  # storage reachable before the app starts


def test_no_key_or_connection_string_is_written_anywhere():
    for path in BICEP:
        text = path.read_text(encoding="utf-8")
        assert "listKeys" not in text and "AccountKey=" not in text, path
        assert "SharedAccessSignature" not in text and "listAccountSas" not in text, path
    settings = app_settings()
    assert "AUDIT_TABLE_CONNECTION_STRING" not in settings
    secretish = {n for n in settings if re.search("KEY|SECRET|PASSWORD|CONNECTION", n)}
    # App Insights' connection string only locates the resource: local auth is disabled and the
    # identity authenticates (APPLICATIONINSIGHTS_AUTHENTICATION_STRING holds a client id).
    # IDEMPOTENCY_SECRET is the app's own HMAC key, no credential to any service.
    assert secretish == {"APPLICATIONINSIGHTS_CONNECTION_STRING", "IDEMPOTENCY_SECRET"}
    secret = parse(INFRA / "app" / "api.bicep")["parameters"]["idempotencySecret"]
    assert [d["type"] for d in secret["decorators"]] == ["secure"]
    [(_, _, insights, _)] = resources("Microsoft.Insights/components")
    assert insights["properties"]["DisableLocalAuth"] is True
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"


def test_every_role_assignment_is_scoped_to_one_resource():
    assignments = list(resources("Microsoft.Authorization/roleAssignments"))
    assert len(assignments) >= 5
    for path, symbol, assignment, parsed in assignments:
        scope = assignment.get("scope")
        declared = parsed.get("resources") or {}
        assert isinstance(scope, str) and scope in declared, (path, symbol, scope)
        assert declared[scope]["type"].count("/") >= 1  # a resource, not a group/subscription
        assert "resourceGroups" not in declared[scope]["type"], (path, symbol)


def test_the_audit_table_is_reached_with_table_data_reader_only():
    reader = "76199698-9eea-4c19-bc75-cec21354c6b6"  # Storage Table Data Reader
    access = parse(INFRA / "app" / "audit-access.bicep")
    [assignment] = [r for r in access["resources"].values() if not r["existing"]]
    role = body(assignment)["properties"]["roleDefinitionId"]["function"]["parameters"]
    assert access["variables"][role["resource_name_1"]]["value"] == reader
    assert sum(reader in p.read_text(encoding="utf-8") for p in BICEP) == 1
    # exactly one way to the table is set: the endpoint, or App Configuration in the original setup
    choice = parse(INFRA / "app" / "api.bicep")["variables"]["auditTableSettings"]["value"]
    branches = choice["operator"]["operands"]
    assert [s["name"] for s in branches["true_value"]] == ["AUDIT_TABLE_ENDPOINT"]
    assert [s["name"] for s in branches["false_value"]] == ["AppConfigEndpoint"]
    assert "AZURE_CLIENT_ID" in app_settings()  # DefaultAzureCredential finds the identity


def test_durable_functions_scale_as_one_group():
    [(_, _, site, _)] = resources("Microsoft.Web/sites")
    ready = site["properties"]["functionAppConfig"]["scaleAndConcurrency"]["alwaysReady"]
    [group] = ready["operator"]["operands"]["true_value"]
    assert group == {"name": "durable", "instanceCount": "durableAlwaysReady"}


def test_every_app_setting_written_is_one_the_app_or_the_platform_reads():
    read = settings_read_by_the_app()
    assert {"AUDIT_TABLE_ENDPOINT", "AppConfigEndpoint", "MAX_ACTIVITIES_PER_JOB"} <= read
    unread = {n for n in app_settings() if n not in read and not PLATFORM.fullmatch(n)}
    assert unread == set()


def test_azure_identity_really_reads_azure_client_id():
    """The platform allowance above is true of the pinned azure-identity, not assumed."""
    import azure.identity._constants as constants

    assert constants.EnvironmentVariables.AZURE_CLIENT_ID == "AZURE_CLIENT_ID"


def test_azd_deploys_the_checked_package_without_a_remote_build():
    project = yaml.safe_load((ROOT / "azure.yaml").read_text())
    api = project["services"]["api"]
    assert (api["host"], api["language"]) == ("function", "python")
    assert api["remoteBuild"] is False
    assert "make package" in api["hooks"]["prepackage"]["run"]
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    main = parse(INFRA / "main.bicep")
    assert set(parameters) <= set(main["parameters"])
    assert parameters["vnetEnabled"]["value"] == "${VNET_ENABLED=true}"
    outputs = set(main["outputs"])
    assert {"AZURE_FUNCTION_APP_NAME", "SERVICE_API_URI", "AZURE_RESOURCE_GROUP"} <= outputs


def test_job_results_have_their_container_and_a_retention_rule():
    main = parse(INFRA / "main.bicep")
    assert main["variables"]["jobResultsContainerName"]["value"] == CONTAINER
    host = body(main["modules"]["storage"])["params"]
    assert "jobResultsContainerName" in host["containerNames"]
    assert host["expiringContainers"] == ["jobResultsContainerName"]
    [(_, _, policy, _)] = resources("Microsoft.Storage/storageAccounts/managementPolicies")
    [rule] = policy["properties"]["policy"]["rules"]
    assert rule["definition"]["actions"]["baseBlob"]["delete"]["daysAfterModificationGreaterThan"]


def test_one_instance_runs_as_many_activities_as_a_job_keeps_in_flight():
    host = json.loads((ROOT / "host.json").read_text())
    per_instance = host["extensions"]["durableTask"]["maxConcurrentActivityFunctions"]
    assert app_settings()["PYTHON_THREADPOOL_THREAD_COUNT"] == str(per_instance)
    main = parse(INFRA / "main.bicep")
    assert main["parameters"]["maxActivitiesInFlight"]["default"] == per_instance
