"""The local host as the benchmarks drive it: a subprocess, a job submitted and polled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import requests
from azure.data.tables import TableClient

from tools.azurite import ROOT, free_port, wait_for_port

FILTER = "PartitionKey ge @start and PartitionKey le @end and CertNumber ne ''"
KEY = "bench-function-key"
SYSTEM_KEY = "bench-system-key"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory (VmHWM), 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Host:
    """The local host serving the app, in a subprocess with its own data folder.

    `table` is the audit table's connection string (perhaps through a proxy); `storage` is
    AzureWebJobsStorage, where range results go (the real emulator, never the proxy)."""

    def __init__(
        self,
        table: str,
        table_name: str,
        data: Path,
        processes: int = 2,
        storage: str | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.data = data / f"host-{self.port}"
        self.data.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "AUDIT_TABLE_CONNECTION_STRING": table,
            "AzureWebJobsStorage": storage or table,
            "AUDIT_TABLE_NAME": table_name,
            "DEVHOST_FUNCTION_KEY": KEY,
            "DEVHOST_SYSTEM_KEY": SYSTEM_KEY,
            "STATUS_RETRY_AFTER_SECONDS": "1",
            "FUNCTIONS_WORKER_PROCESS_COUNT": str(processes),
            "JOB_RETENTION_SCHEDULE": "0 0 3 * * *",  # as infra/ sets it
            **(settings or {}),
        }
        self.log = open(self.data / "host.log", "wb")  # closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devhost",
                "--app",
                str(ROOT),
                "--port",
                str(self.port),
                "--data",
                str(self.data),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, 60, self.process)
        self.base = f"http://127.0.0.1:{self.port}/api"

    @property
    def database(self) -> Path:
        return self.data / "AuditQueryHub.sqlite"

    def peak_rss_mib(self) -> float:
        return peak_rss_mib(self.process.pid)

    def worker_peak_rss_mib(self) -> float:
        """The largest peak of the host's worker processes (FUNCTIONS_WORKER_PROCESS_COUNT)."""
        peaks = [0.0]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent == self.process.pid:
                peaks.append(peak_rss_mib(int(stat.parent.name)))
        return max(peaks)

    def history_bytes(self, instance_id: str) -> int:
        """The size of a job's history as the management API returns it."""
        response = requests.get(
            f"http://127.0.0.1:{self.port}/runtime/webhooks/durabletask/instances/{instance_id}",
            params={"showHistory": "true", "code": SYSTEM_KEY},
            timeout=60,
        )
        response.raise_for_status()
        return len(json.dumps(response.json()["historyEvents"]))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def job(host: Host, start: str, end: str, timeout: float = 1800) -> tuple[float, int, str]:
    """Submit, poll until Completed: (seconds, result, status URL)."""
    session = requests.Session()
    session.headers["x-functions-key"] = KEY
    began = time.perf_counter()
    submitted = session.get(f"{host.base}/submit/query", params={"s": start, "e": end}, timeout=30)
    submitted.raise_for_status()
    url = submitted.json()["statusUri"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = session.get(url, timeout=30)
        if status.status_code == 200:
            body = status.json()
            if body["status"] != "Completed":
                raise RuntimeError(f"job ended {body['status']}")
            return time.perf_counter() - began, body["result"], url
        time.sleep(0.02)
    raise TimeoutError(url)


def original(connection_string: str, table: str, start: str, end: str) -> tuple[float, int, int]:
    """The original activity: one sequential query over the whole range, then a set.

    Returns (seconds, distinct ids, entities read)."""
    client = TableClient.from_connection_string(connection_string, table)
    began = time.perf_counter()
    items = [
        e["identificationNumber"]
        for e in client.query_entities(
            FILTER, parameters={"start": start, "end": end}, select="identificationNumber"
        )
        if "identificationNumber" in e
    ]
    count = len(set(items))
    return time.perf_counter() - began, count, len(items)
