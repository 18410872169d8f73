"""No response and no log line carries a secret, even when a job fails; keys gate everything."""

from __future__ import annotations

import pytest

from tests.support import ROOT, SYSTEM_KEY, HostProcess, hosted, management_status, wait_done
from tools.azurite import free_port

ACCOUNT_KEY = "RkFLRS1TRUNSRVQtQUNDT1VOVC1LRVktOTk5OTk5OTk5OQ=="
FUNCTION_KEY = "fk-recognizable-7a1c9e"
SECRETS = [ACCOUNT_KEY, FUNCTION_KEY, SYSTEM_KEY, "recognizable"]


@pytest.fixture(scope="module")
def host(tmp_path_factory) -> HostProcess:
    dead_port = free_port()  # nothing listens there: every job fails
    env = {
        "AUDIT_TABLE_CONNECTION_STRING": (
            f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={ACCOUNT_KEY};"
            f"TableEndpoint=http://127.0.0.1:{dead_port}/devstoreaccount1;"
        ),
        "DEVHOST_FUNCTION_KEY": FUNCTION_KEY,
        "ACTIVITY_RETRY_ATTEMPTS": "1",
    }
    with hosted(ROOT, tmp_path_factory.mktemp("secrets"), env) as process:
        yield process


def leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def test_no_response_and_no_log_line_contains_a_secret(host):
    def get(path, key=FUNCTION_KEY):
        response = host.get(path, key=key)
        seen.append(response.text + repr(dict(response.headers)))
        return response

    seen: list[str] = []
    submitted = get("/api/submit/query?s=2021-10-01&e=2021-10-03")
    assert submitted.status_code == 202
    job_id = submitted.json()["id"]
    result = wait_done(host, f"/api/status/{job_id}", timeout=120)
    assert result["status"] == "Failed" and result["error"] == "The job failed."
    get(f"/api/status/{job_id}")
    get(f"/api/submit/query?s=2021-10-01&e=2021-10-03&code={FUNCTION_KEY}", key=None)
    for path in ("/api/submit/query?s=x&e=y", "/api/status/nope", "/api/nowhere"):
        get(path)
        get(path, key=None)
        get(path, key="wrong")
    assert leaks("\n".join(seen)) == []
    # the failure is recorded, with its reason, where only an operator can see it
    internal = management_status(host, job_id).json()
    assert internal["runtimeStatus"] == "Failed"
    assert "Activity function" in internal["output"]
    assert leaks(internal["output"]) == []
    assert leaks(host.logs()) == [], "a log line carries a secret"


def test_the_host_listens_on_loopback_only(host):
    port_hex = f"{host.port:04X}"
    listening = [line.split() for line in open("/proc/net/tcp").read().splitlines()[1:]]
    local = [
        fields[1]
        for fields in listening
        if fields[1].endswith(f":{port_hex}") and fields[3] == "0A"
    ]  # 0A: LISTEN
    assert local == [f"0100007F:{port_hex}"]  # 127.0.0.1
