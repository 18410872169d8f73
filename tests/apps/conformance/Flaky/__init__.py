"""Fails until it has been attempted more than payload['failures'] times (counted on disk)."""

import os
from pathlib import Path


def main(payload: dict) -> dict:
    counter = Path(os.environ["CONFORMANCE_STATE_DIR"], payload["key"])
    attempts = int(counter.read_text()) + 1 if counter.exists() else 1
    counter.write_text(str(attempts))
    if attempts <= payload["failures"]:
        raise RuntimeError(f"attempt {attempts} failed on purpose")
    return {"attempts": attempts}
