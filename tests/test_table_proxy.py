"""The throttling table proxy: its rate model with made-up times, and record/replay against a
real Azurite through the azure-data-tables SDK (no wall-clock assertions: durations are the
benchmark harness's business; here we assert the model's decisions)."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest
import requests
from azure.data.tables import TableClient, TableServiceClient

from tests.support import poll
from tools.azurite import ACCOUNT, Azurite, free_port
from tools.seed import generate, upload
from tools.table_proxy import (
    Entry,
    Limits,
    ProxyCache,
    RateModel,
    TableProxy,
    cache_key,
    count_entities,
    is_table_query,
    proxied_connection_string,
    run_in_thread,
    serving,
    starting_partition,
)

TABLE = "proxytest"
DAYS = 5
FILTER = "PartitionKey ge @lower and PartitionKey le @upper and CertNumber ne ''"
RANGE = {"lower": "2022-01-01", "upper": "2022-01-05"}
SELECT = ["identificationNumber"]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# ---- the rate model, pure: (arrival, partition, entities) pages -> release times
MODEL_CASES = {
    "one page of 1,000 at 2,000/s": ([(0.0, "p", 1000)], [0.5]),
    "same partition queues": ([(0.0, "p", 1000), (0.0, "p", 1000)], [0.5, 1.0]),
    "a later page after idle does not carry debt": (
        [(0.0, "p", 1000), (10.0, "p", 1000)],
        [0.5, 10.5],
    ),
    "12 partitions are bound by the account": (
        [(0.0, f"p{i:02d}", 1000) for i in range(12)],
        [0.5] * 10 + [0.55, 0.6],
    ),
    "an empty page costs exactly the latency": ([(3.0, "p", 0)], [3.02]),
    "a small page costs the latency": ([(1.0, "p", 10)], [1.02]),
    "charged per starting partition": ([(0.0, "a", 1000), (0.0, "b", 1000)], [0.5, 0.5]),
}


@pytest.mark.parametrize("pages,expected", MODEL_CASES.values(), ids=MODEL_CASES.keys())
def test_rate_model_releases(pages: list, expected: list[float]) -> None:
    model = RateModel(Limits())
    released = [model.release_at(*page) for page in pages]
    assert released == pytest.approx(expected)


def test_rate_model_counts_busy_time_per_bucket() -> None:
    model = RateModel(Limits(partition_entities_per_s=100, account_entities_per_s=1000))
    for partition, entities in [("a", 50), ("b", 100), ("a", 50)]:
        model.release_at(0.0, partition, entities)
    busy = model.busy()
    assert busy["account_busy_s"] == pytest.approx(0.2)
    assert busy["partition_busy_s"] == pytest.approx({"a": 1.0, "b": 1.0})


# ---- which partition a page starts at
PARTITION_CASES = {
    "ge": (
        {"$filter": "PartitionKey ge '2021-10-01' and PartitionKey le '2021-10-05'"},
        "2021-10-01",
    ),
    "gt": (
        {"$filter": "PartitionKey gt '2021-10-01' and PartitionKey lt '2021-10-05'"},
        "2021-10-01",
    ),
    "eq": ({"$filter": "(PartitionKey eq 'x') and CertNumber ne ''"}, "x"),
    "escaped quote": ({"$filter": "PartitionKey ge 'O''Brien' and CertNumber ne ''"}, "O'Brien"),
    "upper bound only": ({"$filter": "PartitionKey le '2021-10-05'"}, ""),
    "no key bound": ({"$filter": "CertNumber ne ''"}, ""),
    "no filter": ({}, ""),
    "continuation wins": (
        {"$filter": "PartitionKey ge '2021-10-01'", "NextPartitionKey": b64("2021-10-03")},
        "2021-10-03",
    ),
    "opaque continuation kept": ({"NextPartitionKey": "1!not-base64"}, "1!not-base64"),
}


@pytest.mark.parametrize("query,expected", PARTITION_CASES.values(), ids=PARTITION_CASES.keys())
def test_starting_partition(query: dict, expected: str) -> None:
    assert starting_partition(query) == expected


# ---- which requests are queries, and what identifies them
QUERY_CASES = {
    "query": ("GET", f"/{ACCOUNT}/audit()", True),
    "point read": ("GET", f"/{ACCOUNT}/audit(PartitionKey='a',RowKey='b')", True),
    "table listing": ("GET", f"/{ACCOUNT}/Tables()", False),
    "insert": ("POST", f"/{ACCOUNT}/audit", False),
    "create table": ("POST", f"/{ACCOUNT}/Tables", False),
    "delete": ("DELETE", f"/{ACCOUNT}/audit(PartitionKey='a',RowKey='b')", False),
    "other account": ("GET", "/someoneelse/audit()", False),
    "batch": ("POST", f"/{ACCOUNT}/$batch", False),
}


@pytest.mark.parametrize("method,path,expected", QUERY_CASES.values(), ids=QUERY_CASES.keys())
def test_is_table_query(method: str, path: str, expected: bool) -> None:
    assert is_table_query(method, path) is expected


def test_cache_key_ignores_volatile_parameters_and_order() -> None:
    stable = {"$filter": "PartitionKey ge 'a'", "$top": "1000"}
    signed = {**stable, "sig": "abc", "se": "2030", "st": "2020", "sp": "r", "sv": "2019"}
    later = {"timeout": "30", "spr": "https", "tn": "audit", **dict(reversed(stable.items()))}
    assert cache_key("/t()", signed, "a") == cache_key("/t()", later, "a")
    assert cache_key("/t()", stable, "a") != cache_key("/t()", {**stable, "$top": "5"}, "a")
    assert cache_key("/t()", stable, "a") != cache_key("/u()", stable, "a")
    assert cache_key("/t()", stable, "nometadata") != cache_key("/t()", stable, "fullmetadata")


COUNT_CASES = {
    "value list": (b'{"value": [{"a": 1}, {"a": 2}]}', 2),
    "empty list": (b'{"value": []}', 0),
    "no value": (b'{"PartitionKey": "a"}', 0),
    "not json": (b"<error/>", 0),
    "json list": (b"[1, 2]", 0),
}


@pytest.mark.parametrize("body,expected", COUNT_CASES.values(), ids=COUNT_CASES.keys())
def test_count_entities(body: bytes, expected: int) -> None:
    assert count_entities(body) == expected


def test_proxied_connection_string_moves_only_the_table_endpoint() -> None:
    original = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=abc==;"
        "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
        "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    )
    proxied = proxied_connection_string(original, 4242)
    assert proxied == original.replace("10002", "4242")
    bare = proxied_connection_string("AccountName=devstoreaccount1;AccountKey=k==", 7)
    assert bare.endswith(f"TableEndpoint=http://127.0.0.1:7/{ACCOUNT};")
    assert "AccountKey=k==" in bare


def test_cache_persists_entries(tmp_path: Path) -> None:
    path = tmp_path / "pages.sqlite"
    cache = ProxyCache(path)
    cache.put("k", Entry(200, {"x-ms-continuation-NextRowKey": "r"}, b"\x00body"))
    cache.close()
    reopened = ProxyCache(path)
    try:
        entry = reopened.get("k")
        assert entry is not None
        assert (entry.status, entry.body) == (200, b"\x00body")
        assert entry.headers["X-MS-Continuation-NextRowKey"] == "r"  # case-insensitive
        assert reopened.get("missing") is None
        assert len(reopened) == 1
    finally:
        reopened.close()


# ---- against a real Azurite, through the SDK
@dataclass
class SpyModel(RateModel):
    """Records every charge: (arrival, partition, entities, release)."""

    calls: list[tuple[float, str, int, float]] = field(default_factory=list)

    def release_at(self, arrival: float, partition: str, entities: int) -> float:
        release = super().release_at(arrival, partition, entities)
        self.calls.append((arrival, partition, entities, release))
        return release


@pytest.fixture(scope="module")
def seeded(azurite: Azurite) -> tuple[Azurite, list[dict]]:
    """The proxy's own table, and the direct query's answer (the reference)."""
    upload(azurite.connection_string, TABLE, generate(date(2022, 1, 1), DAYS, 90))
    return azurite, query(azurite.connection_string)


def upstream_of(azurite: Azurite) -> str:
    return f"http://127.0.0.1:{azurite.port}"


def query(connection_string: str) -> list[dict]:
    client = TableClient.from_connection_string(connection_string, TABLE)
    pages = client.query_entities(FILTER, parameters=RANGE, select=SELECT, results_per_page=100)
    return [dict(entity) for entity in pages]


@pytest.fixture
def start_proxy() -> Iterator[Callable[[TableProxy], int]]:
    """Factory: start_proxy(proxy) -> port, serving from a thread; stopped at teardown."""
    stops: list[Callable[[], None]] = []

    def start(proxy: TableProxy) -> int:
        port, stop = run_in_thread(proxy)
        stops.append(stop)
        return port

    yield start
    for stop in stops:
        stop()
    poll(lambda: not proxy_threads(), 10, what="proxy threads to end")


def proxy_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "table-proxy" and t.is_alive()]


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_records_then_replays_the_same_answer(seeded, start_proxy) -> None:
    azurite, direct = seeded
    model = SpyModel(Limits())
    proxy = TableProxy(upstream_of(azurite), Limits(), ProxyCache(), model=model)
    proxied = proxied_connection_string(azurite.connection_string, start_proxy(proxy))

    assert query(proxied) == direct
    first = proxy.stats()
    assert first["pages"] >= 4  # several 100-entity pages, so continuations were followed
    assert first["misses"] == first["pages"] == first["cached_entries"]
    assert first["hits"] == 0
    assert first["entities"] == len(direct)

    assert query(proxied) == direct
    second = proxy.stats()
    assert second["hits"] == first["pages"]
    assert second["misses"] == first["misses"]
    assert second["pages"] == 2 * first["pages"]
    assert second["entities"] == 2 * len(direct)
    assert second["cached_entries"] == first["cached_entries"]


def test_charges_each_page_to_its_starting_partition(seeded, start_proxy) -> None:
    azurite, direct = seeded
    limits = Limits()
    model = SpyModel(limits)
    proxy = TableProxy(upstream_of(azurite), limits, ProxyCache(), model=model)
    query(proxied_connection_string(azurite.connection_string, start_proxy(proxy)))

    partitions = [partition for _, partition, _, _ in model.calls]
    days = {entity["PartitionKey"] for entity in generate(date(2022, 1, 1), DAYS, 1)}
    assert partitions[0] == RANGE["lower"]
    assert set(partitions) <= days
    assert len(set(partitions)) > 1  # continuations were decoded, not charged to one token
    assert sum(entities for _, _, entities, _ in model.calls) == len(direct)
    for arrival, _, _, release in model.calls:
        assert release >= arrival + limits.request_latency_s
    stats = proxy.stats()
    assert stats["account_busy_s"] == pytest.approx(len(direct) / limits.account_entities_per_s)
    partition_busy = sum(stats["partition_busy_s"].values())
    assert partition_busy == pytest.approx(len(direct) / limits.partition_entities_per_s)


def test_persisted_cache_answers_without_azurite(seeded, start_proxy, tmp_path) -> None:
    azurite, direct = seeded
    path = tmp_path / "pages.sqlite"
    warm_cache = ProxyCache(path)
    with serving(upstream_of(azurite), Limits(), warm_cache) as port:
        assert query(proxied_connection_string(azurite.connection_string, port)) == direct
    warm_cache.close()
    assert not listening(port)

    cache = ProxyCache(path)
    dead = f"http://127.0.0.1:{free_port()}"
    proxy = TableProxy(dead, Limits(), cache)
    replay_port = start_proxy(proxy)
    try:
        assert query(proxied_connection_string(azurite.connection_string, replay_port)) == direct
        stats = proxy.stats()
        assert stats["misses"] == 0
        assert stats["hits"] == stats["pages"] > 0
        assert stats["entities"] == len(direct)

        uncached = requests.get(
            f"http://127.0.0.1:{replay_port}/{ACCOUNT}/{TABLE}()",
            params={"$filter": "PartitionKey eq 'never-asked'"},
            timeout=10,
        )
        assert uncached.status_code == 502
        assert proxy.stats()["upstream_errors"] == 1
    finally:
        cache.close()


def test_other_requests_are_forwarded_and_never_cached(seeded, start_proxy) -> None:
    azurite, _ = seeded
    proxy = TableProxy(upstream_of(azurite), Limits(), ProxyCache())
    proxied = proxied_connection_string(azurite.connection_string, start_proxy(proxy))
    client = TableClient.from_connection_string(proxied, "proxywrites")
    client.create_table()
    client.create_entity({"PartitionKey": "p", "RowKey": "1", "value": "through the proxy"})
    service = TableServiceClient.from_connection_string(proxied)
    assert "proxywrites" in {table.name for table in service.list_tables()}  # GET Tables()

    direct = TableClient.from_connection_string(azurite.connection_string, "proxywrites")
    assert direct.get_entity("p", "1")["value"] == "through the proxy"
    stats = proxy.stats()
    assert stats["forwarded"] >= 2
    assert stats["pages"] == stats["cached_entries"] == 0
