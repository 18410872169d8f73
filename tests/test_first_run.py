"""A newcomer's first run: `make run` prints README.md's block line for line and its commands
work, the banner's KEY= line and its truthful origin, every function listed with its trigger,
local.settings.json's Host section honoured (port, CORS), and taken ports or unusable settings
refused in one line."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from devhost.config import build_config
from devhost.errors import AppLoadError
from tests.support import FUNCTION_KEY, ROOT, poll, require_tool
from tools.azurite import ensure_free, free_port

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


BANNER_FUNCTIONS = [  # each function of the app, in the banner's order, with its trigger
    r"client-function: \[GET,POST\] http://127\.0\.0\.1:\d+/api/submit/query",
    r"count-distinct-activity-function: activityTrigger",
    r"delete-range-results-activity-function: activityTrigger",
    r"get-status-function: \[DELETE,GET\] http://127\.0\.0\.1:\d+/api/status/\{id\}",
    r"orchestrator-function: orchestrationTrigger",
    r"query-storage-account-activity-function: activityTrigger",
    r"retention-timer-function: timerTrigger \(%JOB_RETENTION_SCHEDULE%\)",
]


def test_the_banner_lists_every_function_with_its_trigger(start_host):
    logged = start_host().logs().splitlines()
    after = logged[logged.index("Functions:") + 1 :]
    listed = [line[2:] for line in itertools.takewhile(lambda x: x.startswith("  "), after)]
    for line, pattern in zip(listed, BANNER_FUNCTIONS, strict=True):
        assert re.fullmatch(pattern, line), (line, pattern)
    folders = sorted(p.parent.name for p in ROOT.glob("*/function.json"))
    assert [line.split(":")[0] for line in listed] == folders  # none left out


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


def fresh_checkout(tmp_path: Path) -> Path:
    """What a newcomer's clone holds (the files git tracks, as they are now) plus this
    checkout's node_modules: make run there has its own .data and .devhost, and no
    local.settings.json."""
    git = require_tool("git", why="a fresh checkout's files")
    tracked = subprocess.run(
        [git, "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout.decode()
    checkout = tmp_path / "main"
    for name in filter(None, tracked.split("\0")):
        if (ROOT / name).is_file():  # not one deleted in the working tree
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, checkout / name)
    (checkout / "node_modules").symlink_to(ROOT / "node_modules")
    return checkout


def pids_running(marker: str) -> list[int]:
    """Process ids whose command line mentions `marker` (a test's own folder)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def start_run_local(checkout: Path, env: dict, **streams: Any) -> subprocess.Popen:
    """`python -m tools.run_local` in `checkout`, in a process group of its own (as Ctrl-C in
    a terminal reaches it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tools.run_local"],
        cwd=checkout,
        env={"PATH": os.environ["PATH"], **env},
        start_new_session=True,
        **streams,
    )


def stop_run_local(process: subprocess.Popen, checkout: Path) -> None:
    """By process id: SIGTERM to its group (it then stops the host and Azurite), SIGKILL if it
    is still there after 30 s, then any of its Azurites left behind (their own sessions)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):  # what is left of its group: host, workers
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    for pid in pids_running(str(checkout / ".data")):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def run_local(env: dict, checkout: Path) -> subprocess.CompletedProcess:
    """A run_local expected to refuse at once: its output and exit code."""
    process = start_run_local(checkout, env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = process.communicate(timeout=60)
    finally:
        stop_run_local(process, checkout)
    return subprocess.CompletedProcess(process.args, process.returncode, out.decode(), err.decode())


def test_make_run_refuses_a_taken_port_in_one_line(tmp_path):
    checkout = fresh_checkout(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for env in ({"PORT": str(port)}, {"PORT": str(free_port()), "AZURITE_PORT": str(port)}):
            result = run_local(env, checkout)
            assert result.returncode == 1
            assert result.stderr.count("\n") == 1, result.stderr
            assert f"127.0.0.1:{port} is already in use" in result.stderr
            assert ("PORT" if "AZURITE_PORT" not in env else "AZURITE_PORT") in result.stderr


@pytest.mark.parametrize(
    ("env", "settings", "message"),
    [
        ({"PORT": "abc"}, None, "PORT must be a port number (1-65535), not 'abc'"),
        ({"AZURITE_PORT": "70000"}, None, "AZURITE_PORT must be a port number"),
        ({"AZURITE_BLOB_PORT": "-1"}, None, "AZURITE_BLOB_PORT must be a port number"),
        ({}, "{not json", "local.settings.json: invalid JSON"),
        ({}, '{"Host": {"LocalHttpPort": "x"}}', "Host.LocalHttpPort must be a port number"),
        ({}, '{"Values": ["x"]}', "local.settings.json: Values and Host must be JSON objects"),
    ],
)
def test_make_run_refuses_an_unusable_setting_in_one_line(tmp_path, env, settings, message):
    checkout = fresh_checkout(tmp_path)
    if settings is not None:
        (checkout / "local.settings.json").write_text(settings)
    ports = {"AZURITE_PORT": str(free_port())}  # refused for the setting, not for a taken port
    if settings is None:  # else the file's Host.LocalHttpPort is the one read
        ports["PORT"] = str(free_port())
    result = run_local({**ports, **env}, checkout)
    assert result.returncode == 1
    assert result.stderr.startswith("make run: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert result.stdout == ""
    assert not (checkout / ".data").exists()  # refused before anything started


FAKE_PYTHON = """#!/bin/sh
# python3 -m venv DIR: a venv whose python says what it was asked to run (pip is quiet)
mkdir -p "$3/bin"
printf '#!/bin/sh\\ncase "$2" in pip) ;; *) echo "ran: $*" ;; esac\\n' > "$3/bin/python"
chmod +x "$3/bin/python"
"""
FAKE_NPM = """#!/bin/sh
# what npm 11 prints on stdout after `npm ci --loglevel=error`
mkdir -p node_modules
printf '\\nadded 457 packages in 40s\\n'
"""


def test_make_run_shows_only_what_it_installs_and_never_its_recipes(tmp_path):
    """make echoes no recipe line, and a first run adds one line per install (npm's summary
    is not shown): what README.md's Quick start says."""
    make = require_tool("make", why="the Makefile's output")
    tools = tmp_path / "bin"
    tools.mkdir()
    for name, script in (("python3", FAKE_PYTHON), ("npm", FAKE_NPM)):
        (tools / name).write_text(script)
        (tools / name).chmod(0o755)
    for name in ("requirements.txt", "requirements-dev.txt", "package.json", "package-lock.json"):
        (tmp_path / name).write_text("")
    command = [make, "--no-print-directory", "-C", str(tmp_path), "-f", str(ROOT / "Makefile")]
    env = {"PATH": f"{tools}:/usr/bin:/bin"}

    def run() -> str:
        result = subprocess.run(
            [*command, "run", f"PYTHON={tools / 'python3'}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0 and result.stderr == "", result.stderr
        return result.stdout

    assert run() == (
        "installing Python packages into .venv (requirements-dev.txt)\n"
        "installing Azurite into node_modules (package-lock.json)\n"
        "ran: -m tools.run_local\n"
    )
    assert run() == "ran: -m tools.run_local\n"  # and later runs: only make run's own output


def readme_block() -> list[str]:
    """The lines README.md says make run prints: the text block after "It prints"."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"\bIt\s+prints\b.*?```text\n(.*?)\n```", readme, re.S)
    assert block, "README.md: no ```text block after 'It prints'"
    return block.group(1).splitlines()


def generic(lines: list[str]) -> list[str]:
    """Lines with what differs between runs masked: keys, the app folder, the port (the test's
    own, the README's 7071), ids and durations."""
    masks = [
        (r"(KEY=)\S+", r"\1<key>"),
        (r"\(app: [^,]+,", "(app: <app>,"),
        (r"127\.0\.0\.1:\d+\b", "127.0.0.1:<port>"),
        (r"\b[0-9a-f]{32}\b", "<id>"),
        (r"\b\d+(\.\d+)?\s?(ms|s)\b", "<duration>"),
    ]

    def mask(line: str) -> str:
        for pattern, replacement in masks:
            line = re.sub(pattern, replacement, line)
        return line

    return [mask(line) for line in lines]


def test_make_run_prints_the_readme_block_and_its_commands_work(tmp_path):
    """A fresh checkout's run (its own ports): README.md's block line for line, then the curl
    commands it prints, with the printed key, give the expected count; Ctrl-C stops it all."""
    checkout = fresh_checkout(tmp_path)
    port, table_port, blob_port = free_port(), free_port(), free_port()
    env = {"PORT": str(port), "AZURITE_PORT": str(table_port), "AZURITE_BLOB_PORT": str(blob_port)}
    output = tmp_path / "terminal.log"  # stdout and stderr together, as a terminal shows them
    with output.open("wb") as terminal:
        process = start_run_local(checkout, env, stdout=terminal, stderr=subprocess.STDOUT)
    try:
        expected = readme_block()

        def printed() -> list[str] | None:
            assert process.poll() is None, output.read_text()
            lines = output.read_text(errors="replace").splitlines()
            last = generic(expected)[-1]
            ends = [n for n, line in enumerate(generic(lines)) if line == last]
            return lines[: ends[0] + 1] if ends else None

        lines = poll(printed, 300, interval=0.2, what="make run's Ready text")
        assert generic(lines) == generic(expected)

        text = "\n".join(lines)
        key = re.search(r"^  KEY=(\S+)   # the function key, generated for this run$", text, re.M)
        submit = re.search(
            r'^  curl -i -H "x-functions-key: \$KEY" "(\S+/submit/\S+)"$', text, re.M
        )
        count = re.search(r"^2021-10-10\.\.2021-12-10: (\d+)\):$", text, re.M)
        assert key and submit and count, text
        headers = {"x-functions-key": key.group(1)}
        accepted = requests.get(submit.group(1), headers=headers, timeout=30)
        assert accepted.status_code == 202, accepted.text
        status_uri = accepted.json()["statusUri"]
        assert status_uri.startswith(f"http://127.0.0.1:{port}/api/status/")

        def finished() -> dict | None:
            answer = requests.get(status_uri, headers=headers, timeout=30)
            return answer.json() if answer.status_code == 200 else None

        assert poll(finished, 180, interval=0.5, what="the job")["result"] == int(count.group(1))

        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C
        assert process.wait(timeout=60) == 0, output.read_text()
        for used, setting in (
            (port, "PORT"),
            (table_port, "AZURITE_PORT"),
            (blob_port, "AZURITE_BLOB_PORT"),
        ):
            ensure_free(used, "make run", setting)  # nothing left listening: stopped
        assert pids_running(str(checkout)) == []
    finally:
        stop_run_local(process, checkout)


def test_cors_wildcard_with_credentials_is_refused_as_core_tools_refuses_it(tmp_path):
    with pytest.raises(AppLoadError, match="CORSCredentials cannot be true with CORS"):
        build_config(
            tmp_path, {}, tmp_path, "127.0.0.1", 7071, {"CORS": "*", "CORSCredentials": True}
        )
