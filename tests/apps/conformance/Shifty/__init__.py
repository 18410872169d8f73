"""An orchestrator whose code "changes" under a running instance: once the file `shifted`
exists in the state folder, its replay calls another activity than the history recorded."""

import os
from pathlib import Path

import azure.durable_functions as df


def orchestrator(context: df.DurableOrchestrationContext):
    shifted = Path(os.environ["CONFORMANCE_STATE_DIR"], "shifted").exists()
    yield context.call_activity("HelloAsync" if shifted else "Hello", "once")
    yield context.wait_for_external_event("Go")
    return "unchanged"


main = df.Orchestrator.create(orchestrator)
