"""The benchmark's big data set: built once into a persistent Azurite folder, then reused.

A realistic density is 1,000,000 entities over 366 days (about 2,700 a day-partition), which
takes Azurite minutes to ingest; every later `make bench` starts that Azurite on the same folder.
The folder lives under .bench/ (not committed, not deployed) with a marker naming what it holds.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

from azure.core.exceptions import AzureError
from azure.data.tables import TableClient, TableServiceClient

from tools.azurite import ROOT, Azurite
from tools.seed import BATCH, generate

HOME = ROOT / ".bench"
TABLE = "audit"


@dataclass(frozen=True)
class DataSet:
    entities: int
    days: int
    start: date = date(2021, 1, 1)

    @property
    def per_day(self) -> int:
        """Rows in each day-partition: at least `entities` in all."""
        return max(1, math.ceil(self.entities / self.days))

    def folder(self, home: Path) -> Path:
        return home / f"azurite-{self.entities}-{self.days}"

    def span(self, days: int) -> tuple[str, str]:
        """The first `days` days of the data set, as the API's inclusive start and end."""
        return self.start.isoformat(), (self.start + timedelta(days=days - 1)).isoformat()

    def rows(self, offset: int) -> list[dict]:
        return list(generate(self.start + timedelta(days=offset), 1, self.per_day))


def _upload_day(connection_string: str, data: DataSet, offset: int, attempts: int = 5) -> int:
    """One day's rows; again, whole, when Azurite drops the connection (it stops answering for
    seconds while it saves a database of hundreds of MB). Upserts: a repeat changes nothing."""
    client = TableClient.from_connection_string(connection_string, TABLE)
    rows = data.rows(offset)
    for attempt in range(1, attempts + 1):
        try:
            for first in range(0, len(rows), BATCH):
                client.submit_transaction([("upsert", e) for e in rows[first : first + BATCH]])
            break
        except AzureError:
            if attempt == attempts:
                raise
            time.sleep(2**attempt)  # a backoff, not a synchronisation: Azurite is saving
    return len(rows)


def open_dataset(data: DataSet, home: Path = HOME, log=print) -> Azurite:
    """An Azurite holding the data set: started on its folder, filled the first time only."""
    folder = data.folder(home)
    marker = folder / "dataset.json"
    wanted = {**asdict(data), "start": data.start.isoformat(), "per_day": data.per_day}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return Azurite(folder / "azurite").start()
    shutil.rmtree(folder, ignore_errors=True)  # another data set's rows and recorded pages
    azurite = Azurite(folder / "azurite").start()
    try:
        TableServiceClient.from_connection_string(azurite.connection_string).create_table(TABLE)
        log(f"building the data set: {data.per_day * data.days:,} entities (once)")
        with ThreadPoolExecutor(8) as pool:  # Azurite is one thread; 8 clients keep it busy
            uploaded = sum(
                pool.map(
                    lambda d: _upload_day(azurite.connection_string, data, d), range(data.days)
                )
            )
        azurite.wait_saved(time.time(), timeout=900)  # on disk before the marker says so
        marker.write_text(json.dumps(wanted))
        log(f"built {uploaded:,} entities in {folder}")
    except BaseException:
        azurite.stop()
        raise
    return azurite
