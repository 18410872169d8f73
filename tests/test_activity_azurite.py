"""The activity's query against a real Azurite table, checked against independent counts."""

from __future__ import annotations

import importlib
from datetime import date

import pytest
from azure.core.exceptions import ServiceResponseError
from azure.data.tables import TableClient

from shared.connection import TableTarget
from shared.partitions import key_ranges
from shared.table_query import CLIENT_OPTIONS, make_client, query_range
from tests.conftest import SEED
from tests.faults import SilentServer
from tools.azurite import connection_string
from tools.seed import expected_count, generate

activity = importlib.import_module("query-storage-account-activity-function")


@pytest.fixture
def table(audit_table: str) -> TableClient:
    return TableClient.from_connection_string(audit_table, "audit")


@pytest.mark.parametrize(
    ("start", "end"), [("2021-10-02", "2021-10-02"), ("2021-10-03", "2021-10-09")]
)
def test_a_closed_range_matches_the_independent_count(table, start, end):
    ids = query_range(table, {"from": start, "to": end, "toInclusive": True})
    assert ids == sorted(set(ids))
    assert len(ids) == expected_count(generate(**SEED), start, end)


def test_the_union_of_day_ranges_equals_the_original_single_query(table):
    start, end = date(2021, 10, 1), date(2021, 10, 20)
    union: set[str] = set()
    for key_range in key_ranges(start, end, 1):
        union.update(query_range(table, key_range))
    original = {
        e["identificationNumber"]
        for e in table.query_entities(
            "PartitionKey ge @s and PartitionKey le @e and CertNumber ne ''",
            parameters={"s": start.isoformat(), "e": end.isoformat()},
            select=["identificationNumber"],
        )
        if "identificationNumber" in e
    }
    assert union == original
    assert len(union) == expected_count(generate(**SEED), start.isoformat(), end.isoformat())


def test_pages_are_followed_and_entities_without_the_id_are_skipped(azurite):
    client = TableClient.from_connection_string(azurite.connection_string, "paging")
    client.create_table()
    rows = [
        (
            "upsert",
            {
                "PartitionKey": "2022-01-01",
                "RowKey": f"{i:05d}",
                "CertNumber": "C",
                "identificationNumber": f"N{i % 1500}",
            },
        )
        for i in range(2300)
    ]
    rows += [("upsert", {"PartitionKey": "2022-01-01", "RowKey": "x-no-id", "CertNumber": "C"})]
    for i in range(0, len(rows), 100):
        client.submit_transaction(rows[i : i + 100])
    ids = query_range(client, {"from": "2022-01-01", "to": "2022-01-01", "toInclusive": True})
    assert len(ids) == 1500  # 2,300 rows over 3 pages of 1,000


def test_the_function_entry_point_stores_its_ids_and_returns_only_a_reference(
    audit_table, monkeypatch
):
    monkeypatch.setenv("AUDIT_TABLE_CONNECTION_STRING", audit_table)
    monkeypatch.setenv("AzureWebJobsStorage", audit_table)
    activity.default_pool.cache_clear()
    activity.default_results.cache_clear()
    try:
        task = {"from": "2021-10-05", "to": "2021-10-06", "toInclusive": False}
        result = activity.main({**task, "job": "entrypoint", "index": 3})
        expected = expected_count(generate(**SEED), "2021-10-05", "2021-10-05")
        assert result == {"blob": "entrypoint/00003.txt", "ids": expected}
        store = activity.default_results()
        assert store.count_distinct([result["blob"]]) == expected
        assert store.delete_job("entrypoint") == 1
    finally:
        activity.default_pool.cache_clear()
        activity.default_results.cache_clear()


def test_a_table_endpoint_that_never_answers_fails_the_query_instead_of_holding_it():
    """The SDK's defaults (300 s read timeout, retries) held a slot for about 20 minutes."""
    assert CLIENT_OPTIONS["read_timeout"] <= 30 and CLIENT_OPTIONS["retry_total"] <= 3
    with SilentServer() as silent:
        target = TableTarget(connection_string=connection_string(silent.port))
        client = make_client(target, "audit", read_timeout=1, retry_backoff_factor=0)
        with pytest.raises(ServiceResponseError):
            query_range(client, {"from": "2021-10-01", "to": "2021-10-02", "toInclusive": True})
        assert len(silent.accepted) == 1 + CLIENT_OPTIONS["retry_total"]  # bounded retries
