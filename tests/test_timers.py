"""Timer triggers on the local host: schedules, runOnStartup, a missed run past due, a durable
client in a timer, and a timer whose schedule is unusable reported in error."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

from devhost.durable.model import TimerStatus
from devhost.store.sqlite import Store
from tests.support import ROOT, poll

APP = ROOT / "tests" / "apps" / "timers"


def runs(state: Path, name: str) -> list[dict]:
    path = state / name
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def start(start_host, tmp_path: Path, data: Path | None = None):
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    env = {"TIMER_STATE_DIR": str(state), "STARTUP_SCHEDULE": "0 0 0 1 Jan *"}
    return start_host(app=APP, env=env, data=data), state


def test_timers_run_on_schedule_and_on_startup(start_host, tmp_path):
    host, state = start(start_host, tmp_path)
    poll(lambda: len(runs(state, "tick")) >= 3, 20, what="three ticks")
    # more than once a minute: no schedule status is kept, as the extension does
    assert all(run == {"past_due": False, "status": {}} for run in runs(state, "tick"))
    (startup,) = runs(state, "startup")  # once, at start: its schedule is a year away
    assert startup["past_due"] is False
    assert startup["status"]["Last"] == "0001-01-01T00:00:00+00:00"
    next_year = datetime.now(UTC).year + 1
    assert startup["status"]["Next"].startswith(f"{next_year}-01-01T00:00:00")
    census = poll(lambda: runs(state, "census"), 20, what="the census timer")
    assert census[0]["instances"] == 0  # its durable client reached the task hub
    assert runs(state, "yearly") == []
    logged = host.logs()
    assert "The 'broken' function is in error: " in logged
    assert "'sometimes' was not recognized as a valid cron expression" in logged
    assert "yearly: timerTrigger (0 0 0 1 Jan *)" in logged


def test_an_occurrence_missed_while_down_runs_past_due_at_start(start_host, tmp_path):
    data = tmp_path / "data"
    host, state = start(start_host, tmp_path, data)
    store_path = data / "TimersHub.sqlite"

    def yearly_status() -> TimerStatus | None:
        store = Store(store_path)
        try:
            return store.timer_status("yearly")
        finally:
            store.close()

    status = poll(yearly_status, 20, what="the yearly timer's status")
    assert time.gmtime(status.next)[:3] == (time.gmtime().tm_year + 1, 1, 1)
    host.kill()
    store = Store(store_path)
    store.save_timer_status("yearly", TimerStatus(None, time.time() - 3600, time.time() - 3600))
    store.close()
    start(start_host, tmp_path, data)
    (missed,) = poll(lambda: runs(state, "yearly"), 20, what="the past-due run")
    assert missed["past_due"] is True
    assert missed["status"]["Last"] == "0001-01-01T00:00:00+00:00"
