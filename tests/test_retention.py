"""Retention on the local host, with a one-second schedule: finished jobs are purged (their
Idempotency-Key free again, their blobs gone), running ones are left alone."""

from __future__ import annotations

import pytest
from azure.storage.blob import BlobServiceClient

from shared.range_results import CONTAINER, blob_name
from tests.support import HostProcess, poll, suspended_job

RUNS = "Executed 'Functions.retention-timer-function' (Succeeded"


@pytest.fixture
def app(start_host, audit_table) -> HostProcess:
    env = {
        "AUDIT_TABLE_CONNECTION_STRING": audit_table,
        "AzureWebJobsStorage": audit_table,
        "IDEMPOTENCY_SECRET": "retention-test",
        "JOB_RETENTION_DAYS": "0",
        "JOB_RETENTION_SCHEDULE": "*/1 * * * * *",
    }
    return start_host(env=env)


def gone(app: HostProcess, job: str) -> bool:
    return app.get(f"/api/status/{job}").status_code == 404


def test_finished_jobs_are_purged_and_running_ones_kept(app, audit_table):
    keyed = {"Idempotency-Key": "report-2021-q4"}
    job = app.get("/api/submit/query?s=2021-10-01&e=2021-10-04", headers=keyed).json()["id"]
    held, _ = suspended_job(app)
    # a range result it may not have reached yet, as a canceled job leaves them: retention
    # must delete it (the job's own clean-up never runs once it is canceled)
    container = BlobServiceClient.from_connection_string(audit_table).get_container_client(
        CONTAINER
    )
    container.upload_blob(blob_name(held, 0), b"ID-1\n", overwrite=True)
    poll(lambda: gone(app, job), 20, what="the finished job purged")
    # the key is free again: other dates are a new job, not a 409
    again = app.get("/api/submit/query?s=2021-10-05&e=2021-10-07", headers=keyed)
    assert again.status_code == 202 and again.json()["id"] == job
    runs = app.logs().count(RUNS)
    poll(lambda: app.logs().count(RUNS) >= runs + 2, 20, what="two more retention runs")
    assert app.get(f"/api/status/{held}").status_code == 202  # suspended: not finished, kept
    assert list(container.list_blobs(name_starts_with=f"{held}/"))  # and so are its blobs
    assert app.request("DELETE", f"/api/status/{held}").status_code == 202
    poll(lambda: gone(app, held), 20, what="the canceled job purged")
    assert list(container.list_blobs(name_starts_with=f"{held}/")) == []
