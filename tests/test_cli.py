"""The caller's CLI (tools/query.py) against the app on the local host: the count, --json, the
API's errors, --key over the environment, a failed job, a job another caller cancels, and in a
real terminal (tmux) the progress bar and Ctrl-C cancelling the job."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SEED
from tests.support import (
    FUNCTION_KEY,
    ROOT,
    HostProcess,
    hosted,
    poll,
    require_tool,
    resume,
    suspended_job,
)
from tools.seed import expected_count, generate


@pytest.fixture(scope="module")
def app(audit_table, tmp_path_factory) -> HostProcess:
    env = {
        "AUDIT_TABLE_CONNECTION_STRING": audit_table,
        "AzureWebJobsStorage": audit_table,
        "IDEMPOTENCY_SECRET": "cli-test",
        "STATUS_RETRY_AFTER_SECONDS": "1",  # as make run sets it
    }
    with hosted(ROOT, tmp_path_factory.mktemp("cli"), env) as host:
        yield host


def cli(
    app: HostProcess, *args: str, key: str = FUNCTION_KEY, env: dict | None = None
) -> subprocess.CompletedProcess:
    """The CLI against `app`, with `key` as $AUDIT_API_KEY (none if empty), or exactly `env`."""
    if env is None:
        env = {"PATH": os.environ["PATH"], "AUDIT_API_KEY": key} if key else {"PATH": "/usr/bin"}
    return subprocess.run(
        [sys.executable, "-m", "tools.query", *args, "--url", f"{app.base}/api"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_prints_the_count(app):
    result = cli(app, "2021-10-01", "2021-10-15", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(
        expected_count(generate(**SEED), "2021-10-01", "2021-10-15")
    )
    assert result.stderr.startswith("job ")


def test_json_prints_the_final_status(app):
    result = cli(app, "01/10/2021", "05/10/2021", "--json")
    assert result.returncode == 0, result.stderr
    final = json.loads(result.stdout)
    assert final["status"] == "Completed"
    assert final["result"] == expected_count(generate(**SEED), "2021-10-01", "2021-10-05")


@pytest.mark.parametrize(
    ("args", "key", "message"),
    [
        (("2021-10-05", "2021-10-01"), FUNCTION_KEY, "error: Invalid date range."),
        (("2021-10-01", "abcd"), FUNCTION_KEY, "error: Invalid end date format."),
        (("2021-10-01", "2021-10-02"), "", "error: no function key"),
    ],
)
def test_the_api_refusing_is_exit_code_2_with_its_message(app, args, key, message):
    result = cli(app, *args, key=key)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(message)
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("env", "flag", "code", "message"),
    [
        ({}, FUNCTION_KEY, 0, None),  # no variable: the flag alone
        ({"AUDIT_API_KEY": "wrong", "KEY": "wrong"}, FUNCTION_KEY, 0, None),  # the flag wins
        ({"AUDIT_API_KEY": FUNCTION_KEY}, "wrong", 2, "error: Unauthorized"),  # even a bad one
        ({"KEY": FUNCTION_KEY}, "", 0, None),  # no flag: $KEY, as make run says to export
    ],
)
def test_the_key_flag_is_used_instead_of_the_environment(app, env, flag, code, message):
    args = ["2021-10-01", "2021-10-03", "--no-progress", *(["--key", flag] if flag else [])]
    result = cli(app, *args, env={"PATH": os.environ["PATH"], **env})
    assert result.returncode == code, result.stderr
    if message:
        assert result.stderr.strip().splitlines()[-1].startswith(message), result.stderr
    else:
        truth = expected_count(generate(**SEED), "2021-10-01", "2021-10-03")
        assert result.stdout.strip() == str(truth)


def test_a_failed_job_is_exit_code_1_with_the_apis_message(audit_table, start_host):
    """A job whose every range fails (the table does not exist, one attempt per range)."""
    failing = start_host(
        env={
            "AUDIT_TABLE_CONNECTION_STRING": audit_table,
            "AzureWebJobsStorage": audit_table,
            "AUDIT_TABLE_NAME": "nosuchtable",
            "ACTIVITY_RETRY_ATTEMPTS": "1",
            "STATUS_RETRY_AFTER_SECONDS": "1",
        }
    )
    result = cli(failing, "2021-10-01", "2021-10-03", "--json")
    assert result.returncode == 1, result.stderr
    final = json.loads(result.stdout)
    assert final["status"] == "Failed" and final["result"] is None
    assert result.stderr.strip().splitlines()[-1] == "error: The job failed."


def test_a_job_canceled_by_someone_else_is_shown_canceled(app, tmp_path):
    """While the CLI follows a held job, another caller cancels it (DELETE): the CLI ends with
    the API's message and exit code 1."""
    job, key = suspended_job(app, "cli-other")
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tools.query",
                "2021-10-01",
                "2021-10-20",
                "--idempotency-key",
                key,
                "--url",
                f"{app.base}/api",
            ],
            cwd=ROOT,
            env={"PATH": os.environ["PATH"], "AUDIT_API_KEY": FUNCTION_KEY},
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        # the bar is drawn from a poll's progress: the CLI is following the job
        poll(lambda: re.search(r"job: +\d+%\|", errors.read_text()), 30, what="the CLI polling")
        assert app.request("DELETE", f"/api/status/{job}").status_code == 202
        stdout, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    shown = errors.read_text()
    assert process.returncode == 1, shown
    assert shown.strip().splitlines()[-1] == "error: The job was canceled.", shown
    assert stdout == ""  # no count
    assert app.get(f"/api/status/{job}").json()["status"] == "Canceled"


class Terminal:
    """One tmux session running one command; the pane is read with capture-pane."""

    def __init__(self, name: str, command: str, tmp_path: Path) -> None:
        self.tmux = require_tool("tmux", why="the CLI's terminal tests")
        self.name = name
        self.socket = ["-L", name]  # a server of its own, started with this process's env
        script = tmp_path / f"{name}.sh"
        script.write_text(f"{command}\necho EXIT=$?\nsleep 60\n")
        subprocess.run(
            [
                self.tmux,
                *self.socket,
                "new-session",
                "-d",
                "-s",
                name,
                "-x",
                "120",
                "-y",
                "20",
                "bash",
                str(script),
            ],
            check=True,
            env={**os.environ, "AUDIT_API_KEY": FUNCTION_KEY},
        )

    def screen(self) -> str:
        pane = [self.tmux, *self.socket, "capture-pane", "-p", "-t", self.name]
        return subprocess.run(pane, capture_output=True, text=True, check=False).stdout

    def keys(self, *keys: str) -> None:
        subprocess.run([self.tmux, *self.socket, "send-keys", "-t", self.name, *keys], check=True)

    def close(self) -> None:
        subprocess.run([self.tmux, *self.socket, "kill-server"], check=False)


def query_command(app: HostProcess, *args: str) -> str:
    return f"cd {ROOT} && {sys.executable} -m tools.query {' '.join(args)} --url {app.base}/api"


def test_a_progress_bar_in_a_real_terminal(app, tmp_path):
    """The job is held until the bar shows, then let go: the bar fills and the count follows."""
    job, key = suspended_job(app, "cli-bar")
    command = query_command(app, "2021-10-01", "2021-10-20", f"--idempotency-key {key}")
    terminal = Terminal(f"cli-{os.getpid()}-bar", command, tmp_path)
    try:
        poll(lambda: re.search(r"job: +\d+%\|.*\| \d+/\d+", terminal.screen()), 30, what="a bar")
        resume(app, job)
        screen = poll(
            lambda: "EXIT=" in terminal.screen() and terminal.screen(), 60, what="the CLI"
        )
        assert "EXIT=0" in screen, screen
        assert re.search(r"job: 100%\|█+\| (\d+)/\1 ", screen), screen  # tqdm's bar, full
        count = expected_count(generate(**SEED), "2021-10-01", "2021-10-20")
        assert f"\n{count}\n" in screen, screen
    finally:
        terminal.close()


@pytest.mark.parametrize("answer", ["flag", "y"])
def test_ctrl_c_cancels_the_job(app, tmp_path, answer):
    job, key = suspended_job(app, f"cli-{answer}")
    flag = "--cancel-on-interrupt" if answer == "flag" else ""
    command = query_command(app, "2021-10-01", "2021-10-20", f"--idempotency-key {key}", flag)
    terminal = Terminal(f"cli-{os.getpid()}-{answer}", command, tmp_path)
    try:
        poll(lambda: f"job {job}" in terminal.screen(), 30, what="the CLI following the job")
        terminal.keys("C-c")
        if answer == "y":
            poll(lambda: "Cancel the job" in terminal.screen(), 20, what="the question")
            terminal.keys("y", "Enter")
        screen = poll(lambda: "EXIT=" in terminal.screen() and terminal.screen(), 30, what="exit")
        assert "EXIT=130" in screen and "canceled:" in screen, screen
        poll(
            lambda: app.get(f"/api/status/{job}").json().get("status") == "Canceled",
            20,
            what="the job canceled",
        )
    finally:
        terminal.close()
