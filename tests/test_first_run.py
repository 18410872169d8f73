"""A newcomer's first run: the banner's KEY= line and its truthful origin, every function listed,
local.settings.json's Host section honoured (port, CORS), and taken ports refused in one line."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys

import pytest
import requests

from devhost.config import build_config
from devhost.errors import AppLoadError
from tests.support import FUNCTION_KEY, ROOT, poll
from tools.azurite import free_port

CONFORMANCE = ROOT / "tests" / "apps" / "conformance"


def test_a_generated_key_is_printed_ready_to_export(start_host):
    host = start_host(env={"DEVHOST_FUNCTION_KEY": "", "DEVHOST_SYSTEM_KEY": ""})
    logged = host.logs()
    key = re.search(r"^  KEY=(\S+)   # the function key, generated for this run$", logged, re.M)
    assert key, logged[:2000]
    assert re.search(r"^  SYSTEM_KEY=\S+   # the system key, generated for this run$", logged, re.M)
    ok = host.get("/api/status/" + "0" * 32, key=key.group(1))
    assert ok.status_code == 404  # the printed key opens the door: the job is just unknown


def test_a_configured_key_is_never_echoed_and_its_origin_is_said(start_host):
    host = start_host(env={"DEVHOST_FUNCTION_KEY_ORIGIN": ""})
    logged = host.logs()
    assert "the function key: from DEVHOST_FUNCTION_KEY (not shown)" in logged
    assert FUNCTION_KEY not in logged


def test_the_banner_lists_every_function_with_its_trigger(start_host):
    logged = start_host().logs()
    functions = logged[logged.index("Functions:") :]
    assert re.search(
        r"client-function: \[GET,POST\] http://127\.0\.0\.1:\d+/api/submit/query", functions
    )
    assert "orchestrator-function: orchestrationTrigger" in functions
    assert "query-storage-account-activity-function: activityTrigger" in functions


def run_app_with_host_settings(tmp_path, host_section: dict) -> tuple[subprocess.Popen, int]:
    app = tmp_path / "app"
    shutil.copytree(CONFORMANCE, app)
    (app / "local.settings.json").write_text(json.dumps({"Values": {}, "Host": host_section}))
    log = (tmp_path / "host.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "devhost", "--app", str(app), "--data", str(tmp_path / "data")],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DEVHOST_FUNCTION_KEY": FUNCTION_KEY},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process, host_section["LocalHttpPort"]


def test_local_settings_host_port_and_cors_are_honoured(tmp_path):
    port = free_port()
    settings = {"LocalHttpPort": port, "CORS": "http://app.example", "CORSCredentials": True}
    process, port = run_app_with_host_settings(tmp_path, settings)
    try:
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            assert process.poll() is None, (tmp_path / "host.log").read_text()
            try:
                return requests.get(f"{base}/admin/host/ping", timeout=1).ok
            except requests.ConnectionError:
                return False

        poll(up, 60, what="the host on its LocalHttpPort")
        preflight = requests.options(
            f"{base}/api/start/Chain",
            headers={
                "Origin": "http://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-functions-key",
            },
            timeout=10,
        )
        assert preflight.status_code == 204  # no key needed for a preflight
        assert preflight.headers["Access-Control-Allow-Origin"] == "http://app.example"
        assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
        assert preflight.headers["Access-Control-Allow-Headers"] == "x-functions-key"
        answer = requests.post(
            f"{base}/api/start/Chain",
            headers={"Origin": "http://app.example", "x-functions-key": FUNCTION_KEY},
            timeout=10,
        )
        assert answer.status_code == 202
        assert answer.headers["Access-Control-Allow-Origin"] == "http://app.example"
        stranger = requests.options(
            f"{base}/api/start/Chain",
            headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
            timeout=10,
        )
        assert "Access-Control-Allow-Origin" not in stranger.headers
    finally:
        process.kill()
        process.wait(timeout=30)


def run_local(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tools.run_local"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_make_run_refuses_a_taken_port_in_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for env in ({"PORT": str(port)}, {"PORT": str(free_port()), "AZURITE_PORT": str(port)}):
            result = run_local(env)
            assert result.returncode == 1
            assert result.stderr.count("\n") == 1, result.stderr
            assert f"127.0.0.1:{port} is already in use" in result.stderr
            assert ("PORT" if "AZURITE_PORT" not in env else "AZURITE_PORT") in result.stderr


def test_cors_wildcard_with_credentials_is_refused_as_core_tools_refuses_it(tmp_path):
    with pytest.raises(AppLoadError, match="CORSCredentials cannot be true with CORS"):
        build_config(
            tmp_path, {}, tmp_path, "127.0.0.1", 7071, {"CORS": "*", "CORSCredentials": True}
        )
