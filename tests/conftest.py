"""Session fixtures: one real Azurite with a seeded audit table, and local hosts on demand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from tests.support import ROOT, HostProcess
from tools.azurite import Azurite, free_port
from tools.seed import generate, upload

SEED = {"start": date(2021, 10, 1), "days": 20, "per_day": 150}


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    emulator = Azurite(tmp_path_factory.mktemp("azurite")).start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="session")
def audit_table(azurite: Azurite) -> str:
    """The connection string of an 'audit' table holding the SEED data."""
    upload(azurite.connection_string, "audit", generate(**SEED))
    return azurite.connection_string


@pytest.fixture
def start_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """Factory: start_host(app=ROOT, env={...}, data=None) -> a running HostProcess."""
    started: list[HostProcess] = []

    def start(app=ROOT, env: dict | None = None, data=None) -> HostProcess:
        host = HostProcess(app, data or tmp_path_factory.mktemp("devhost"), free_port(), env or {})
        started.append(host)
        return host.start()

    yield start
    for host in started:
        host.kill()
