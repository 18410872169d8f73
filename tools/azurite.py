"""Start and stop Azurite's table and blob services (from node_modules) on loopback.

One process per service: a long table scan blocks Node's event loop, and must not stall the
blob reads and writes of the jobs that run at the same time.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "devstoreaccount1"
# Azurite's fixed, publicly documented development key: not a secret.
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def connection_string(table_port: int, blob_port: int | None = None) -> str:
    blob = f"BlobEndpoint=http://127.0.0.1:{blob_port}/{ACCOUNT};" if blob_port else ""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"TableEndpoint=http://127.0.0.1:{table_port}/{ACCOUNT};{blob}"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PortInUseError(RuntimeError):
    """Something already listens where we would: never talk to it as if it were ours."""


def ensure_free(port: int, what: str, setting: str) -> None:
    """One clear line when the port is taken (an Azurite of another project, say)."""
    with socket.socket() as probe:
        # as servers bind: a port a closed connection still holds (TIME_WAIT) is free
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise PortInUseError(
                f"127.0.0.1:{port} is already in use, so {what} cannot start there: stop what "
                f"listens on it, or set {setting} to a free port"
            ) from None


def wait_for_port(port: int, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited early with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class Azurite:
    """Azurite's table and blob services with a data folder of their own; `port` is the table's."""

    def __init__(self, data_dir: Path, port: int | None = None, blob_port: int | None = None):
        self.data_dir, self.port = data_dir, port or free_port()
        self.blob_port = blob_port or free_port()
        self.processes: list[subprocess.Popen] = []

    @property
    def connection_string(self) -> str:
        """Table and blob endpoints: what AzureWebJobsStorage and the audit table setting take."""
        return connection_string(self.port, self.blob_port)

    @property
    def table_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    def _start(self, service: str, port: int, timeout: float) -> None:
        binary = ROOT / "node_modules" / ".bin" / f"azurite-{service}"
        setting = "AZURITE_PORT" if service == "table" else "AZURITE_BLOB_PORT"
        ensure_free(port, f"Azurite's {service} service", setting)
        if not binary.exists():
            raise FileNotFoundError("Azurite is not installed: run `npm ci` (or `make deps`)")
        process = subprocess.Popen(
            [
                str(binary),
                f"--{service}Host",
                "127.0.0.1",
                f"--{service}Port",
                str(port),
                "--location",
                str(self.data_dir),
                "--skipApiVersionCheck",
                "--disableProductStyleUrl",
                "--silent",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.processes.append(process)
        wait_for_port(port, timeout, process)

    def start(self, timeout: float = 60) -> Azurite:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._start("table", self.port, timeout)
            self._start("blob", self.blob_port, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def process(self) -> subprocess.Popen | None:
        """The table service's process (the one fault tests stop and start)."""
        return self.processes[0] if self.processes else None

    def wait_saved(self, since: float, timeout: float = 30) -> None:
        """Wait until Azurite has saved what was written before `since` (it autosaves every
        5 s and SIGTERM does not save), so a stop and start keeps the data."""
        database = self.data_dir / "__azurite_db_table__.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if database.exists() and database.stat().st_mtime > since:
                return
            time.sleep(0.1)
        raise TimeoutError("Azurite did not save its data in time")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)
        self.processes = []
