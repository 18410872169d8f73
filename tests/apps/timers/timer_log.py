"""Shared by the test timers: append one JSON line per run to $TIMER_STATE_DIR/<name>."""

import json
import os
from pathlib import Path

import azure.functions as func


def record(name: str, timer: func.TimerRequest, **extra) -> None:
    line = {"past_due": timer.past_due, "status": timer.schedule_status, **extra}
    with Path(os.environ["TIMER_STATE_DIR"], name).open("a") as out:
        out.write(json.dumps(line) + "\n")
