"""Both HTTP functions called with real azure.functions.HttpRequest objects, and retention's
purge, as async tests (pytest-asyncio).

Their durable client talks real HTTP to the local host's management API, served in-process over
a real SQLite store, so the SDK's client code runs unmodified.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func
import pytest
import pytest_asyncio
from aiohttp import web

from devhost.durable import events as ev
from devhost.durable.client_binding import client_binding, instance_links, management_urls
from devhost.durable.engine import Engine
from devhost.durable.model import Episode, RuntimeStatus
from devhost.http.app import rpc_app
from devhost.http.management import ManagementApi
from devhost.store.sqlite import Store
from shared import jobs
from shared.retention import purge_expired
from tools.azurite import free_port

client_function = importlib.import_module("client-function").main
status_function = importlib.import_module("get-status-function").main
SYSTEM_KEY = "SYSKEY-never-shown"
BASE = "https://audit.example.com"


class Functions:
    """The engine is never run here: the store is driven by hand."""

    def names(self, kind: str) -> set[str]:
        return {"orchestrator-function"} if kind == "orchestrator" else set()


@pytest_asyncio.fixture
async def api(tmp_path):
    """(store, durable client binding): the management API served over a real SQLite store.
    All tests share one event loop (pyproject.toml): the SDK keeps one aiohttp session per
    process, bound to the loop that made it, as the worker has one loop for its lifetime."""
    store = Store(tmp_path / "hub.sqlite")
    urls = management_urls("http://127.0.0.1:7071", "TestHub", SYSTEM_KEY)
    engine = Engine(store, Functions(), 1, 1)
    runner = web.AppRunner(rpc_app(ManagementApi(engine, lambda i: instance_links(urls, i))))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    binding = client_binding(
        "http://127.0.0.1:7071", f"http://127.0.0.1:{port}/durabletask/", "TestHub", SYSTEM_KEY
    )
    try:
        yield store, binding
    finally:
        await runner.cleanup()
        store.close()


def submit_request(query: str, method: str = "GET", headers: dict | None = None):
    params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
    return func.HttpRequest(
        method, f"{BASE}/api/submit/query?{query}", headers=headers or {}, params=params, body=b""
    )


def status_request(instance_id: str, method: str = "GET"):
    return func.HttpRequest(
        method,
        f"{BASE}/api/status/{instance_id}?code=abc",
        headers={},
        route_params={"id": instance_id},
        body=b"",
    )


def body_of(response: func.HttpResponse) -> dict:
    assert response.mimetype == "application/json"
    return json.loads(response.get_body())


def assert_nothing_internal(response: func.HttpResponse) -> None:
    text = response.get_body().decode() + json.dumps(dict(response.headers))
    for needle in (
        SYSTEM_KEY,
        "runtime/webhooks",
        "durabletask",
        "Traceback",
        "AccountKey",
        "partitionDays",
        "127.0.0.1",
    ):
        assert needle not in text


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.asyncio
async def test_submit_starts_a_job_and_answers_202_with_the_status_url(api, method):
    store, binding = api
    response = await client_function(submit_request("s=10/10/2021&e=10/12/2021", method), binding)
    instances = store.list_instances()
    body = body_of(response)
    assert response.status_code == 202
    assert re.fullmatch(r"[0-9a-f]{32}", body["id"])
    assert body["statusUri"] == f"{BASE}/api/status/{body['id']}"
    assert response.headers["Location"] == body["statusUri"]
    assert int(response.headers["Retry-After"]) > 0
    assert [i.id for i in instances] == [body["id"]]
    stored = json.loads(instances[0].input)
    assert (stored["start"], stored["end"]) == ("2021-10-10", "2021-12-10")
    assert_nothing_internal(response)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "Empty start date."),
        ("s=10/08/2021&e=abcd", "Invalid end date format."),
        ("s=10/08/2021&e=05/08/2021", "Invalid date range."),
        ("s=12&e=2021-12-10", "Invalid start date format."),
        ("s=2021-01-01", "Empty end date."),
        ("s=2020-01-01&e=2021-12-10", "Date range too large."),
    ],
)
@pytest.mark.asyncio
async def test_bad_dates_get_400_with_the_documented_message(api, query, message):
    store, binding = api
    response = await client_function(submit_request(query), binding)
    instances = store.list_instances()
    assert response.status_code == 400
    assert body_of(response) == {"error": message}
    assert instances == []


@pytest.mark.asyncio
async def test_the_status_url_uses_the_public_base_url_when_set(api, monkeypatch):
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://gateway.example.com/audit/api/")
    _, binding = api
    body = body_of(await client_function(submit_request("s=2021-10-01&e=2021-10-03"), binding))
    assert body["statusUri"] == f"https://gateway.example.com/audit/api/status/{body['id']}"


@pytest.mark.asyncio
async def test_an_idempotency_key_returns_the_same_job_and_refuses_other_dates(api, monkeypatch):
    monkeypatch.setenv("IDEMPOTENCY_SECRET", "test-idempotency-secret")
    key = {"Idempotency-Key": "order-42"}

    store, binding = api
    first = await client_function(submit_request("s=2021-10-01&e=2021-10-03", headers=key), binding)
    again = await client_function(submit_request("s=2021-10-01&e=2021-10-03", headers=key), binding)
    other = await client_function(submit_request("s=2021-10-01&e=2021-10-09", headers=key), binding)
    bad = await client_function(
        submit_request("s=2021-10-01&e=2021-10-03", headers={"Idempotency-Key": "a b"}),
        binding,
    )
    instances = store.list_instances()
    assert first.status_code == again.status_code == 202
    assert body_of(first)["id"] == body_of(again)["id"]
    assert other.status_code == 409 and "error" in body_of(other)
    assert bad.status_code == 400 and body_of(bad) == {"error": "Invalid Idempotency-Key header."}
    assert len(instances) == 1
    assert body_of(first)["id"] == jobs.idempotent_instance_id(
        "order-42", "test-idempotency-secret"
    )


def test_a_job_id_from_an_idempotency_key_cannot_be_computed_without_the_secret():
    """A plain hash of the key let anyone who guessed a key read that caller's job."""
    ours = jobs.idempotent_instance_id("report-2021-q4", "secret-a")
    assert ours != jobs.idempotent_instance_id("report-2021-q4", "secret-b")
    unkeyed = hashlib.sha256(b"audit-idempotency:report-2021-q4").hexdigest()[:32]
    assert ours != unkeyed and jobs.JOB_ID.fullmatch(ours)


@pytest.mark.asyncio
async def test_an_idempotency_key_without_the_secret_configured_is_a_503_not_a_guessable_id(
    api, monkeypatch
):
    monkeypatch.delenv("IDEMPOTENCY_SECRET", raising=False)

    store, binding = api
    answer = await client_function(
        submit_request("s=2021-10-01&e=2021-10-03", headers={"Idempotency-Key": "k"}),
        binding,
    )
    instances = store.list_instances()
    assert answer.status_code == 503 and instances == []


def finish(store: Store, instance_id: str, status: str, output, custom=None) -> None:
    store.commit_episode(
        Episode(
            instance_id,
            [],
            [ev.orchestrator_started(1.0)],
            RuntimeStatus(status),
            json.dumps(output) if output is not None else None,
            json.dumps(custom) if custom is not None else None,
            0,
            0,
        ),
        2.0,
    )


LEAKY_ERROR = (
    "Orchestrator function 'orchestrator-function' failed: Traceback ... "
    "AccountKey=c2VjcmV0 at http://127.0.0.1:17071/durabletask/"
)


@pytest.mark.parametrize(
    ("status", "output", "custom", "code", "expected"),
    [
        (
            "Pending",
            None,
            None,
            202,
            {"status": "Pending", "result": None, "progress": {"done": 0, "total": None}},
        ),
        (
            "Running",
            None,
            {"done": 3, "total": 10},
            202,
            {"status": "Running", "result": None, "progress": {"done": 3, "total": 10}},
        ),
        ("Completed", 119, {"done": 10, "total": 10}, 200, {"status": "Completed", "result": 119}),
        (
            "Failed",
            LEAKY_ERROR,
            None,
            200,
            {"status": "Failed", "result": None, "error": "The job failed."},
        ),
        (
            "Terminated",
            "stopped by an operator",
            None,
            200,
            {"status": "Canceled", "result": None, "error": "The job was canceled."},
        ),
    ],
)
@pytest.mark.asyncio
async def test_status_shows_only_what_a_caller_may_see(api, status, output, custom, code, expected):
    store, binding = api
    started = await client_function(submit_request("s=2021-10-01&e=2021-10-03"), binding)
    instance_id = body_of(started)["id"]
    if status != "Pending":
        finish(store, instance_id, status, output, custom)
    response = await status_function(status_request(instance_id), binding)
    assert response.status_code == code
    assert body_of(response) == {"id": instance_id, **expected}
    if code == 202:
        assert response.headers["Location"] == f"{BASE}/api/status/{instance_id}"
        assert int(response.headers["Retry-After"]) > 0
    assert_nothing_internal(response)


@pytest.mark.parametrize(
    ("status", "code", "body", "terminated"),
    [
        ("Pending", 202, None, True),
        ("Running", 202, None, True),
        ("Terminated", 202, None, False),  # canceled already: accepted again, nothing sent
        ("Completed", 409, {"error": "The job has already finished."}, False),
        ("Failed", 409, {"error": "The job has already finished."}, False),
    ],
)
@pytest.mark.asyncio
async def test_delete_cancels_a_running_job(api, status, code, body, terminated):
    store, binding = api
    started = await client_function(submit_request("s=2021-10-01&e=2021-10-03"), binding)
    instance_id = body_of(started)["id"]
    if status != "Pending":
        finish(store, instance_id, status, None)
    response = await status_function(status_request(instance_id, "DELETE"), binding)
    sent = [m.event for m in store.messages(instance_id, 2e9)]
    assert response.status_code == code
    if body is None:
        assert body_of(response) == {
            "id": instance_id,
            "statusUri": f"{BASE}/api/status/{instance_id}",
        }
        assert response.headers["Location"] == f"{BASE}/api/status/{instance_id}"
    else:
        assert body_of(response) == body
    reasons = [e.get("Input") for e in sent if e["EventType"] == ev.EXECUTION_TERMINATED]
    assert reasons == (["Canceled by the caller."] if terminated else [])
    assert_nothing_internal(response)


@pytest.mark.parametrize("instance_id", ["abc", "0" * 31, "g" * 32, "0" * 33, "../x", "0" * 32])
@pytest.mark.asyncio
async def test_malformed_or_unknown_ids_are_404(api, instance_id):
    _, binding = api
    response = await status_function(status_request(instance_id), binding)
    assert response.status_code == 404
    assert body_of(response) == {"error": "Job not found."}


@pytest.mark.asyncio
async def test_a_backend_outage_is_a_503_without_details():
    binding = client_binding(
        "http://127.0.0.1:7071",
        f"http://127.0.0.1:{free_port()}/durabletask/",
        "TestHub",
        SYSTEM_KEY,
    )
    submitted = await client_function(submit_request("s=2021-10-01&e=2021-10-03"), binding)
    polled = await status_function(status_request("a" * 32), binding)
    for response in (submitted, polled):
        assert response.status_code == 503
        assert body_of(response) == {"error": "The job service is unavailable; retry later."}
        assert_nothing_internal(response)


@pytest.mark.asyncio
async def test_retention_purges_only_finished_jobs_and_their_blobs(api):
    store, binding = api
    client = df.DurableOrchestrationClient(binding)
    ids = {}
    for status in ("Completed", "Failed", "Terminated", "Running"):
        started = await client_function(submit_request("s=2021-10-01&e=2021-10-03"), binding)
        ids[status] = body_of(started)["id"]
        if status != "Running":
            finish(store, ids[status], status, None)
    deleted_blobs = []
    purged = await purge_expired(client, 0, deleted_blobs.append, now=datetime.now(UTC))
    assert purged == 3
    assert sorted(deleted_blobs) == sorted(ids[s] for s in ("Completed", "Failed", "Terminated"))
    assert [i.id for i in store.list_instances()] == [ids["Running"]]
    assert await purge_expired(client, 7, deleted_blobs.append) == 0  # nothing that old
