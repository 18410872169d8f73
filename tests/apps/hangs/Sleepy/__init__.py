"""Sleeps the given seconds (a hung call when that is longer than functionTimeout)."""

import os
import time


def main(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()
