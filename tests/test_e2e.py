"""The real app on the local host, over real HTTP, against Azurite."""

from __future__ import annotations

import re

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from shared.range_results import CONTAINER
from tests.conftest import SEED
from tests.contract import assert_matches
from tests.support import (
    FUNCTION_KEY,
    ROOT,
    SYSTEM_KEY,
    HostProcess,
    hosted,
    planned_ranges,
    suspended_job,
    wait_done,
)
from tools.seed import expected_count, generate


@pytest.fixture(scope="module")
def app(audit_table, tmp_path_factory) -> HostProcess:
    env = {
        "AUDIT_TABLE_CONNECTION_STRING": audit_table,
        "AzureWebJobsStorage": audit_table,
        "MAX_ACTIVITIES_IN_FLIGHT": "4",
    }
    with hosted(ROOT, tmp_path_factory.mktemp("e2e"), env) as host:
        yield host


def status_path(response: requests.Response) -> str:
    return "/" + response.json()["statusUri"].split("/", 3)[3]


@pytest.mark.parametrize(("s", "e"), [("2021-10-02", "2021-10-15"), ("01/10/2021", "20/10/2021")])
def test_submit_then_poll_until_completed_gives_the_independent_count(app, audit_table, s, e):
    submitted = app.get(f"/api/submit/query?s={s}&e={e}")
    assert submitted.status_code == 202
    assert_matches("GET", "/submit/query", submitted)
    body = submitted.json()
    assert re.fullmatch(r"[0-9a-f]{32}", body["id"])
    assert body["statusUri"] == f"{app.base}/api/status/{body['id']}"
    assert submitted.headers["Location"] == body["statusUri"]
    result = wait_done(app, status_path(submitted))
    start, end = (d if "-" in d else "-".join(reversed(d.split("/"))) for d in (s, e))
    assert result == {
        "id": body["id"],
        "status": "Completed",
        "result": expected_count(generate(**SEED), start, end),
    }
    # the ranges' blobs are gone once the job has its answer
    service = BlobServiceClient.from_connection_string(audit_table)
    container = service.get_container_client(CONTAINER)
    assert [b.name for b in container.list_blobs(name_starts_with=f"{body['id']}/")] == []


def test_post_submits_too_and_polling_shows_progress(app):
    submitted = app.request("POST", "/api/submit/query?s=2021-10-01&e=2021-10-20")
    assert submitted.status_code == 202
    first = app.get(status_path(submitted))
    assert_matches("GET", "/status/{id}", first)
    if first.status_code == 202:  # still running: the documented running shape
        assert set(first.json()) == {"id", "status", "result", "progress"}
        total = planned_ranges(app.env, "2021-10-01", "2021-10-20")
        assert first.json()["progress"]["total"] in (None, total)
        assert first.headers["Retry-After"]
    assert wait_done(app, status_path(submitted))["status"] == "Completed"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "Empty start date."),
        ("s=10/08/2021&e=abcd", "Invalid end date format."),
        ("s=10/08/2021&e=05/08/2021", "Invalid date range."),
    ],
)
def test_bad_input_is_400_json(app, query, message):
    response = app.get(f"/api/submit/query?{query}")
    assert_matches("GET", "/submit/query", response)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"error": message}


@pytest.mark.parametrize("job_id", ["nope", "0" * 32, "A" * 32])
def test_unknown_jobs_are_404_json(app, job_id):
    response = app.get(f"/api/status/{job_id}")
    assert_matches("GET", "/status/{id}", response)
    assert response.status_code == 404
    assert response.json() == {"error": "Job not found."}


def test_functions_need_a_key(app):
    path = "/api/submit/query?s=2021-10-01&e=2021-10-03"
    assert app.get(path, key=None).status_code == 401
    assert app.get(path, key="wrong").status_code == 401
    assert app.get("/api/status/" + "0" * 32, key=None).status_code == 401
    by_query = requests.get(f"{app.base}{path}&code={FUNCTION_KEY}", timeout=10)
    assert by_query.status_code == 202
    assert app.get(path, key=SYSTEM_KEY).status_code == 202  # the master key opens everything
    refused = app.get(path, key=None)
    assert_matches("GET", "/submit/query", refused)
    assert refused.json()["error"].startswith("Unauthorized")


def test_the_management_api_needs_the_system_key(app):
    url = f"{app.base}/runtime/webhooks/durabletask/instances"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, params={"code": FUNCTION_KEY}, timeout=10).status_code == 401
    assert requests.get(url, params={"code": SYSTEM_KEY}, timeout=10).status_code == 200


def test_wrong_methods_and_routes(app):
    wrong = app.request("DELETE", "/api/submit/query")
    assert wrong.status_code == 405
    assert_matches("POST", "/submit/query", wrong)
    assert app.request("PUT", "/api/status/" + "0" * 32).status_code == 405
    unknown = app.request("DELETE", "/api/status/" + "0" * 32)
    assert unknown.status_code == 404
    assert_matches("DELETE", "/status/{id}", unknown)
    missing = app.get("/api/nothing-here")
    assert missing.status_code == 404 and "error" in missing.json()


def test_delete_cancels_a_job_and_polling_shows_it_canceled(app):
    job, _ = suspended_job(app)
    canceled = app.request("DELETE", f"/api/status/{job}")
    assert canceled.status_code == 202
    assert_matches("DELETE", "/status/{id}", canceled)
    assert canceled.json() == {"id": job, "statusUri": f"{app.base}/api/status/{job}"}
    final = wait_done(app, f"/api/status/{job}")
    assert final == {
        "id": job,
        "status": "Canceled",
        "result": None,
        "error": "The job was canceled.",
    }
    again = app.request("DELETE", f"/api/status/{job}")
    assert again.status_code == 202  # idempotent
    done = app.get("/api/submit/query?s=2021-10-01&e=2021-10-03").json()["id"]
    wait_done(app, f"/api/status/{done}")
    finished = app.request("DELETE", f"/api/status/{done}")
    assert finished.status_code == 409
    assert finished.json() == {"error": "The job has already finished."}
    assert_matches("DELETE", "/status/{id}", finished)
