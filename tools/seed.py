"""Deterministic synthetic audit data, and the distinct count it must give.

python -m tools.seed --connection-string CS [--table audit] [--start 2021-10-01] [--days 60]
                     [--per-day 500] [--expect 2021-10-10 2021-12-10]

Realistic shape: partition key YYYY-MM-DD, many entities a day, identification numbers repeated
across days, some entities with an empty CertNumber, some without identificationNumber. The
expected count is computed from the generated rows, never by querying the table.
"""

from __future__ import annotations

import argparse
import random
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, timedelta

from azure.data.tables import TableServiceClient

EMPTY_CERT_SHARE = 0.1
NO_ID_SHARE = 0.03
BATCH = 100  # the Table service's limit per transaction


def generate(start: date, days: int, per_day: int, seed: int = 7) -> Iterator[dict]:
    pool = max(50, days * per_day // 3)  # ~3 sightings per id: many repeats across days
    for offset in range(days):
        day = start + timedelta(days=offset)
        rng = random.Random(f"{seed}:{day.isoformat()}")
        for row in range(per_day):
            entity = {
                "PartitionKey": day.isoformat(),
                "RowKey": f"{row:07d}",
                "CertNumber": ""
                if rng.random() < EMPTY_CERT_SHARE
                else f"C{rng.randrange(10**8):08d}",
                "Operator": rng.choice(["alpha", "beta", "gamma", "delta"]),
            }
            number = f"ID{rng.randrange(pool):08d}"
            if rng.random() >= NO_ID_SHARE:
                entity["identificationNumber"] = number
            yield entity


def expected_count(entities: Iterator[dict], start: str, end: str) -> int:
    """The original query's answer, computed in Python over the generated rows."""
    return len(
        {
            e["identificationNumber"]
            for e in entities
            if start <= e["PartitionKey"] <= end
            and e["CertNumber"] != ""
            and "identificationNumber" in e
        }
    )


def upload(connection_string: str, table: str, entities: Iterator[dict]) -> int:
    service = TableServiceClient.from_connection_string(connection_string)
    client = service.create_table_if_not_exists(table)
    pending: dict[str, list] = defaultdict(list)
    count = 0
    for entity in entities:
        group = pending[entity["PartitionKey"]]
        group.append(("upsert", entity))
        if len(group) == BATCH:
            client.submit_transaction(group)
            count += len(group)
            group.clear()
    for group in pending.values():
        if group:
            client.submit_transaction(group)
            count += len(group)
    return count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connection-string", required=True)
    parser.add_argument("--table", default="audit")
    parser.add_argument("--start", type=date.fromisoformat, default=date(2021, 10, 1))
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--per-day", type=int, default=500)
    parser.add_argument("--expect", nargs=2, metavar=("START", "END"))
    args = parser.parse_args(argv)
    rows = upload(args.connection_string, args.table, generate(args.start, args.days, args.per_day))
    print(f"seeded {rows} entities into '{args.table}'")
    if args.expect:
        count = expected_count(generate(args.start, args.days, args.per_day), *args.expect)
        print(f"expected distinct count {args.expect[0]}..{args.expect[1]}: {count}")


if __name__ == "__main__":
    main()
