"""Signals and calls an entity from an orchestrator, and sees an operation's error."""

import azure.durable_functions as df


def orchestrator(context: df.DurableOrchestrationContext):
    tally = df.EntityId("Tally", context.get_input())
    context.signal_entity(tally, "add", 3)
    value = yield context.call_entity(tally, "get")
    try:
        yield context.call_entity(tally, "fail")
        error = None
    except Exception as failure:
        error = str(failure)
    return {"value": value, "error": error}


main = df.Orchestrator.create(orchestrator)
