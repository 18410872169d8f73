"""Query one partition-key range of the audit table; returns its sorted distinct ids."""

from shared.table_query import default_pool, query_range


def main(keyRange: dict) -> list:  # noqa: N803 - the binding's name is the parameter's name
    return query_range(default_pool().client(), keyRange)
