"""Hostile input: property-based tests of the date rules and both endpoints, and schemathesis.

Whatever arrives, the answer is a documented one (202, 400 with a documented message, 401, 404,
405, 413), never a 5xx or a traceback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import dates
from tests.contract import assert_matches
from tests.support import FUNCTION_KEY, ROOT, HostProcess, hosted

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
