"""Calls Flaky once, with no retry: the instance fails, and a rewind runs Flaky again."""

import azure.durable_functions as df


def orchestrator(context: df.DurableOrchestrationContext):
    greeting = yield context.call_activity("Hello", "Rewind")
    result = yield context.call_activity("Flaky", context.get_input())
    return {"greeting": greeting, **result}


main = df.Orchestrator.create(orchestrator)
