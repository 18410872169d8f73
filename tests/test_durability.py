"""SIGKILL the local host in the middle of a fan-out; a restart finishes every job exactly once."""

from __future__ import annotations

import signal
from pathlib import Path

from devhost.durable.model import FINISHED
from devhost.store.sqlite import Store
from tests.conftest import SEED
from tests.support import (
    ROOT,
    HostProcess,
    assert_completed_once,
    management_status,
    poll,
    wait_done,
)
from tools.azurite import free_port
from tools.seed import expected_count, generate

RANGES = [("2021-10-01", "2021-10-20"), ("2021-10-03", "2021-10-17"), ("2021-10-05", "2021-10-19")]


def submit_all(host: HostProcess, copies: int) -> dict[str, tuple[str, str]]:
    jobs = {}
    for _ in range(copies):
        for start, end in RANGES:
            response = host.get(f"/api/submit/query?s={start}&e={end}")
            assert response.status_code == 202
            jobs[response.json()["id"]] = (start, end)
    return jobs


def some_progress(host: HostProcess, jobs: dict) -> bool:
    for job_id in jobs:
        custom = management_status(host, job_id).json().get("customStatus") or {}
        if custom.get("done", 0) >= 1:
            return True
    return False


def test_a_killed_host_resumes_every_job_to_the_same_result(audit_table, tmp_path):
    env = {
        "AUDIT_TABLE_CONNECTION_STRING": audit_table,
        "AzureWebJobsStorage": audit_table,
        "MAX_ACTIVITIES_IN_FLIGHT": "2",
        "FUNCTIONS_WORKER_PROCESS_COUNT": "2",
    }
    data, port = tmp_path / "host", free_port()
    host = HostProcess(ROOT, data, port, env).start()
    try:
        jobs = submit_all(host, copies=3)
        poll(lambda: some_progress(host, jobs), 60, interval=0.01, what="first completed range")
        workers = host.children()
        assert workers, "the durable functions should run in a worker process"
        host.kill(signal.SIGKILL)
        poll(
            lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers),
            15,
            what="worker processes to exit with their host",
        )

        store = Store(data / "AuditQueryHub.sqlite")
        at_kill = {job_id: store.get_instance(job_id).status for job_id in jobs}
        store.close()
        assert any(status not in FINISHED for status in at_kill.values()), at_kill

        host = HostProcess(ROOT, data, port, env).start()
        for job_id, (start, end) in jobs.items():
            result = wait_done(host, f"/api/status/{job_id}", timeout=120)
            assert result["status"] == "Completed"
            assert result["result"] == expected_count(generate(**SEED), start, end)
            assert_completed_once(host, job_id, start, end)
        assert "Traceback" not in host.logs()
    finally:
        host.kill()
