"""Hostile input: property-based tests of the date rules and both endpoints, and schemathesis.

Whatever arrives, the answer is a documented one (202, 400 with a documented message, 401, 404,
405, 413), never a 5xx or a traceback.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import dates
from tests.contract import assert_matches
from tests.support import FUNCTION_KEY, ROOT, HostProcess, hosted, poll

MESSAGES = {
    dates.EMPTY_START,
    dates.BAD_START,
    dates.EMPTY_END,
    dates.BAD_END,
    dates.BAD_RANGE,
    dates.RANGE_TOO_LARGE,
    "Invalid Idempotency-Key header.",
}
NASTY = st.one_of(
    st.text(max_size=80),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.sampled_from(
        [
            "2021-12-10",
            "10/12/2021",
            "12",
            "\x00",
            "%00",
            "2021-12-10T08:00:00Z",
            "9" * 400,
            "-1",
            "NaN",
            "1e309",
            "2021-02-29",
            "0001-01-01",
            "\u202e2021",
        ]
    ),
    st.dates().map(lambda d: d.strftime("%d/%m/%Y")),
    st.dates().map(str),
)
# Any value an HTTP client can send in a header (no CR, LF or leading space), Latin-1 included.
HEADER = st.text(
    alphabet=st.characters(  # no controls and no spaces (a client refuses \xa0 leading a value)
        min_codepoint=0x21, max_codepoint=0xFF, exclude_categories=("Cc", "Zs")
    ),
    min_size=1,
    max_size=200,
)
WEB = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))


@given(NASTY)
@settings(max_examples=500, deadline=None)
def test_parse_date_never_raises_and_keeps_years_sane(text):
    value = dates.parse_date(text)
    assert value is None or dates.MIN_YEAR <= value.year <= dates.MAX_YEAR


@given(st.one_of(st.none(), NASTY), st.one_of(st.none(), NASTY))
@settings(max_examples=500, deadline=None)
def test_validate_range_only_raises_documented_errors(start, end):
    try:
        result = dates.validate_range(start, end, 366)
    except dates.DateRangeError as error:
        assert str(error) in MESSAGES
    else:
        assert 1 <= result.days <= 366


@pytest.fixture(scope="module")
def host(audit_table, tmp_path_factory) -> HostProcess:
    env = {
        "AUDIT_TABLE_CONNECTION_STRING": audit_table,
        "AzureWebJobsStorage": audit_table,
        "MAX_RANGE_DAYS": "31",
        "PARTITION_DAYS": "31",
        "IDEMPOTENCY_SECRET": "hostile-test-secret",
    }  # valid random submissions stay one or two activities
    with hosted(ROOT, tmp_path_factory.mktemp("hostile"), env) as process:
        yield process


def check(response: requests.Response) -> None:
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    if response.status_code == 400:
        assert response.json()["error"] in MESSAGES


METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])


@given(
    method=METHODS,
    start=NASTY,
    end=NASTY,
    extra=st.lists(st.tuples(st.sampled_from(["s", "e", "x", "code", "S"]), NASTY), max_size=3),
    body=st.one_of(st.just(b""), st.binary(max_size=2000)),
    key=st.one_of(st.none(), HEADER),
)
@WEB
def test_submit_answers_hostile_requests_with_documented_codes(
    host, method, start, end, extra, body, key
):
    headers = {"x-functions-key": FUNCTION_KEY}
    if key is not None:
        headers["Idempotency-Key"] = key
    response = requests.request(
        method,
        f"{host.base}/api/submit/query",
        headers=headers,
        params=[("s", start), ("e", end), *extra],
        data=body,
        timeout=30,
    )
    check(response)
    assert response.status_code in {202, 400, 405, 409}


@given(job_id=st.text(max_size=100), method=METHODS)
@WEB
def test_status_answers_hostile_ids_with_documented_codes(host, job_id, method):
    quoted = requests.utils.quote(job_id, safe="")
    response = requests.request(
        method,
        f"{host.base}/api/status/{quoted}",
        headers={"x-functions-key": FUNCTION_KEY},
        timeout=30,
    )
    check(response)
    assert response.status_code in {200, 202, 404, 405}


def test_a_huge_body_is_413_json(host):
    response = host.request(
        "POST", "/api/submit/query?s=2021-10-01&e=2021-10-03", data=b"x" * (2 * 1024 * 1024)
    )
    assert response.status_code == 413
    assert_matches("POST", "/submit/query", response)


def test_very_long_and_repeated_parameters(host):
    long = host.get("/api/submit/query", params={"s": "1" * 100_000, "e": "2021-10-03"})
    assert long.status_code in (400, 414, 431) and long.status_code < 500
    repeated = host.get("/api/submit/query?s=2021-10-01&s=nonsense&e=2021-10-03")
    assert repeated.status_code == 202  # the first value of a repeated parameter counts
    encoded = host.get("/api/submit/query?s=2021%2D10%2D01&e=2021-10-03")
    assert encoded.status_code == 202


def test_schemathesis_finds_no_server_error_and_no_contract_violation(host, tmp_path):
    report = tmp_path / "schemathesis"
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            str(ROOT / "docs" / "openapi.yaml"),
            "--url",
            f"{host.base}/api",
            "--header",
            f"x-functions-key: {FUNCTION_KEY}",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,"
            "response_headers_conformance,response_schema_conformance",
            "--max-examples",
            "40",
            "--seed",
            "7",
            "--report-dir",
            str(report),
            "--wait-for-schema",
            "5",
            "--request-timeout",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:]


# ---- raw sockets: what no well-behaved client library would send
def raw(host: HostProcess, data: bytes, timeout: float = 10, port: int | None = None) -> bytes:
    """Send bytes as they are (to the public port, or `port`); return everything the host
    answers before it closes (a well-formed request says `Connection: close`, a malformed one
    gets its connection closed)."""
    with socket.create_connection(("127.0.0.1", port or host.port), timeout=timeout) as connection:
        connection.sendall(data)
        answer = b""
        for _ in range(1000):  # bounded: a few reads
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


def status_line(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def json_body(answer: bytes) -> dict:
    return json.loads(answer.split(b"\r\n\r\n", 1)[1])


@pytest.mark.parametrize(
    "key",
    [b"\xff\xfe", b"abc\x80def", "\u00e9".encode("latin-1")],
    ids=["ff-fe", "continuation-byte", "latin-1"],
)
@pytest.mark.parametrize("path", [b"/api/status/0123", b"/runtime/webhooks/durabletask/instances"])
def test_a_key_that_is_not_utf8_is_refused_with_401(host, key, path):
    answer = raw(
        host,
        b"GET "
        + path
        + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nx-functions-key: "
        + key
        + b"\r\n\r\n",
    )
    assert status_line(answer) == 401
    assert "error" in json_body(answer)


@pytest.mark.parametrize("port", [b"99999", b"-1", b"abc", b"65536"])
def test_a_host_header_with_a_bad_port_is_a_400(host, port):
    request = (
        b"GET /api/submit/query?s=2021-10-01&e=2021-10-03 HTTP/1.1\r\nHost: 127.0.0.1:"
        + port
        + b"\r\nConnection: close\r\nx-functions-key: "
        + FUNCTION_KEY.encode()
        + b"\r\n\r\n"
    )
    answer = raw(host, request)
    assert status_line(answer) == 400
    assert json_body(answer) == {"error": "Invalid Host header."}


@pytest.mark.parametrize("encoding", [b"gzip", b"deflate", b"br"])
def test_a_body_that_is_not_what_its_content_encoding_says_is_a_400(host, encoding):
    body = b"this is not compressed"
    request = (
        b"POST /api/submit/query?s=2021-10-01&e=2021-10-03 HTTP/1.1\r\nHost: x\r\n"
        b"Connection: close\r\n"
        b"x-functions-key: "
        + FUNCTION_KEY.encode()
        + b"\r\nContent-Encoding: "
        + encoding
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    answer = raw(host, request)
    assert 400 <= status_line(answer) < 500
    assert "error" in json_body(answer)


MALFORMED = [
    b"GET /api/status/x?code=" + b"KEY-IN-THE-QUERY" + b" trailing HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/status/x?code=KEY-IN-THE-QUERY\x7f HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/status/x HTTP/1.1\r\nHost: x\r\nx-functions-key: KEY-IN-THE-QUERY\x01\r\n\r\n",
    b"GARBAGE\x00\x01\x02 /KEY-IN-THE-QUERY\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\nKEY-IN-THE-QUERY",
]


def assert_malformed_requests_are_quiet(host: HostProcess, port: int) -> None:
    """Each MALFORMED request gets the JSON 400, and the log one short line each without it."""
    before = len(host.logs())
    for request in MALFORMED:
        answer = raw(host, request, port=port)
        assert status_line(answer) == 400, answer[:200]
        assert json_body(answer) == {"error": "Bad request."}
    written = poll(
        lambda: host.logs()[before:] if host.logs()[before:].count("malformed") >= 4 else None,
        10,
        what="the malformed-request log lines",
    )
    assert "KEY-IN-THE-QUERY" not in written
    assert "Traceback" not in written
    assert len(written.splitlines()) <= len(MALFORMED)


def test_malformed_requests_get_one_short_line_that_never_holds_the_request(host):
    assert_malformed_requests_are_quiet(host, host.port)


# ---- connections: caps and deadlines (a host with small limits of its own)
@pytest.fixture(scope="module")
def tight(tmp_path_factory) -> HostProcess:
    env = {
        "DEVHOST_MAX_CONNECTIONS": "16",
        "DEVHOST_HEADER_TIMEOUT_SECONDS": "1",
        "DEVHOST_IDLE_TIMEOUT_SECONDS": "5",
    }
    app = ROOT / "tests" / "apps" / "conformance"
    with hosted(app, tmp_path_factory.mktemp("tight"), env) as process:
        yield process


def closed_by_host(connection: socket.socket, within: float) -> bool:
    """True when the host closes the connection within `within` seconds."""
    connection.settimeout(within)
    try:
        return connection.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def ping(host: HostProcess) -> int:
    return requests.get(f"{host.base}/admin/host/ping", timeout=5).status_code


def test_idle_connections_make_room_and_never_starve_new_callers(tight):
    """1,100 idle connections left ping, submit and status timing out, and flooded the log."""
    before = len(tight.logs())
    idle = [socket.create_connection(("127.0.0.1", tight.port), timeout=5) for _ in range(60)]
    try:
        assert all(ping(tight) == 200 for _ in range(10))
        made_room = sum(closed_by_host(c, within=0.2) for c in idle)
    finally:
        for connection in idle:
            connection.close()
    assert made_room >= 60 - 16  # at most DEVHOST_MAX_CONNECTIONS stay open
    assert "Traceback" not in tight.logs()[before:]


def test_a_connection_that_sends_nothing_is_closed_after_the_idle_timeout(tight):
    with socket.create_connection(("127.0.0.1", tight.port), timeout=5) as connection:
        assert closed_by_host(connection, within=10)


def test_slow_headers_are_cut_off_at_the_header_deadline(tight):
    """Slowloris: a byte at a time, never finishing the headers."""
    with socket.create_connection(("127.0.0.1", tight.port), timeout=5) as connection:
        connection.sendall(b"GET /admin/host/ping HTTP/1.1\r\n")
        closed = False
        for _ in range(10):  # 0.25 s apart: 2.5 s, well before the 5 s idle timeout
            try:
                connection.sendall(b"X")
            except OSError:
                closed = True
                break
            if closed_by_host(connection, within=0.25):
                closed = True
                break
        assert closed


# ---- the loopback RPC port the Durable SDK calls: the same guard as the public one
def test_the_rpc_port_answers_malformed_requests_with_one_short_line_too(tight):
    """It had aiohttp's defaults: a traceback holding the raw request line for each one."""
    assert_malformed_requests_are_quiet(tight, tight.rpc_port)


def test_an_idle_connection_to_the_rpc_port_is_closed_after_the_idle_timeout(tight):
    """It kept aiohttp's keep-alive of an hour: idle connections there exhausted the files."""
    with socket.create_connection(("127.0.0.1", tight.rpc_port), timeout=5) as connection:
        assert closed_by_host(connection, within=10)
