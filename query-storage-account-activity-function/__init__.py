"""Query one partition-key range of the audit table; its ids go to a blob, the history gets
the blob's name and a count."""

from shared.range_results import default_results
from shared.table_query import default_pool, query_range


def main(keyRange: dict) -> dict:  # noqa: N803 - the binding's name is the parameter's name
    ids = query_range(default_pool().client(), keyRange)
    return default_results().save(keyRange["job"], keyRange["index"], ids)
