"""The audit table query: distinct identification numbers in one partition-key range."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterable
from typing import Any

from azure.data.tables import TableClient

from shared.connection import TableTarget, TargetCache, resolve_target
from shared.settings import Settings

ID_PROPERTY = "identificationNumber"
PAGE_SIZE = 1000
# A table endpoint that accepts and never answers held an activity for the SDK's defaults (300 s
# read timeout, retries): about 20 minutes. Table Storage spends at most 5 s on a query page, so
# 30 s is generous; two quick retries, and the activity's retry policy does the rest.
CLIENT_OPTIONS = {
    "connection_timeout": 10,
    "read_timeout": 30,
    "retry_total": 2,
    "retry_backoff_factor": 0.5,
    "retry_backoff_max": 4,
}


def range_filter(key_range: dict) -> tuple[str, dict]:
    """The original filter restricted to one range; see shared.partitions for why it is exact."""
    upper = "le" if key_range.get("toInclusive", True) else "lt"
    query = f"PartitionKey ge @lower and PartitionKey {upper} @upper and CertNumber ne ''"
    return query, {"lower": key_range["from"], "upper": key_range["to"]}


def distinct_ids(entities: Iterable[dict]) -> list[str]:
    """Sorted distinct ids, skipping entities that lack the property."""
    found = {str(e[ID_PROPERTY]) for e in entities if e.get(ID_PROPERTY) is not None}
    return sorted(found)


def query_range(client: TableClient, key_range: dict) -> list[str]:
    """Run the range's query, following every continuation token (the SDK's pager does)."""
    query, parameters = range_filter(key_range)
    entities = client.query_entities(
        query, parameters=parameters, select=[ID_PROPERTY], results_per_page=PAGE_SIZE
    )
    return distinct_ids(entities)


def make_client(target: TableTarget, table_name: str, **options: Any) -> TableClient:
    """A table client with CLIENT_OPTIONS (any of which `options` may override)."""
    options = {**CLIENT_OPTIONS, **options}
    if target.connection_string:
        return TableClient.from_connection_string(target.connection_string, table_name, **options)
    return TableClient(target.endpoint, table_name, credential=target.credential, **options)


class ClientPool:
    """One TableClient per process (and per resolved target), reused by every activity."""

    def __init__(self, settings: Settings, cache: TargetCache) -> None:
        self._settings, self._cache = settings, cache
        self._lock = threading.Lock()
        self._target: TableTarget | None = None
        self._client: TableClient | None = None

    def client(self) -> TableClient:
        target = self._cache.get()
        with self._lock:
            if self._client is None or target is not self._target:
                self._client = make_client(target, self._settings.table_name)
                self._target = target
            return self._client


@functools.cache
def default_pool() -> ClientPool:
    """The process-wide pool, built from the environment on first use."""
    settings = Settings.from_env()
    cache = TargetCache(lambda: resolve_target(os.environ), settings.secret_cache_ttl_seconds)
    return ClientPool(settings, cache)
