"""Host-side faults back off and log once: a damaged store or a full disk made the engine retry
at once, forever (87 % of a core, 100 MB of tracebacks a minute)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3

from devhost.durable.backoff import Backoff
from devhost.durable.engine import Engine


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_delays_double_up_to_the_cap_and_reset_on_success():
    clock = Clock()
    backoff = Backoff(logging.getLogger("test"), clock=clock)
    delays = [backoff.failed("k", "boom") for _ in range(12)]
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8]
    assert delays[-1] == 30.0 and max(delays) == 30.0
    assert not backoff.ready("k") and backoff.waiting() == ["k"]
    clock.now += 30
    assert backoff.ready("k")
    backoff.succeeded("k")
    assert backoff.failed("k", "boom") == 0.1


def test_a_repeated_failure_is_logged_once_per_interval_with_its_count(caplog):
    clock = Clock()
    backoff = Backoff(logging.getLogger("test.backoff"), clock=clock)
    with caplog.at_level(logging.ERROR, logger="test.backoff"):
        for key in range(500):  # the same failure, on 500 instances
            backoff.failed(key, "an episode failed in the host: DatabaseError: malformed")
        backoff.failed("other", "something else")
        clock.now += 61
        backoff.failed(1, "an episode failed in the host: DatabaseError: malformed")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "an episode failed in the host: DatabaseError: malformed",
        "something else",
        "an episode failed in the host: DatabaseError: malformed (499 more since)",
    ]


async def run_for(engine: Engine, seconds: float) -> None:
    task = asyncio.ensure_future(engine.run())
    await asyncio.sleep(seconds)  # the duration observed, not a synchronisation
    await engine.stop()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


class BrokenStore:
    """Every read fails as a damaged database does."""

    def __init__(self) -> None:
        self.calls = 0

    def ready_instances(self, *_):
        self.calls += 1
        raise sqlite3.DatabaseError("database disk image is malformed")

    def pending_work(self, *_):
        return []

    def next_due(self, *_):
        return None


class NoFunctions:
    def names(self, kind: str) -> set[str]:
        return set()


def test_a_failing_store_is_retried_with_backoff_not_in_a_hot_loop(caplog):
    store = BrokenStore()
    engine = Engine(store, NoFunctions(), 4, 4)

    with caplog.at_level(logging.ERROR, logger="devhost.engine"):
        asyncio.run(run_for(engine, 1.6))
    assert 3 <= store.calls <= 6  # 0.1 + 0.2 + 0.4 + 0.8 s apart, not thousands of times
    assert len([r for r in caplog.records if "malformed" in r.getMessage()]) == 1


class BrokenInstanceStore(BrokenStore):
    """The dispatcher works; every episode fails to read its instance."""

    def ready_instances(self, _now, skip, _limit):
        return [] if "i1" in skip else ["i1"]

    def get_instance(self, _instance_id):
        self.calls += 1
        raise sqlite3.OperationalError("database or disk is full")


def test_a_failing_episode_backs_off_per_instance(caplog):
    store = BrokenInstanceStore()
    engine = Engine(store, NoFunctions(), 4, 4)

    with caplog.at_level(logging.ERROR, logger="devhost.engine"):
        asyncio.run(run_for(engine, 1.6))
    assert 3 <= store.calls <= 6
    assert len([r for r in caplog.records if "disk is full" in r.getMessage()]) == 1
