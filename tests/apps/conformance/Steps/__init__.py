"""A job that moves slowly: n steps one after another, its progress in its custom status."""

import azure.durable_functions as df


def orchestrator(context: df.DurableOrchestrationContext):
    total = context.get_input()
    for done in range(total):
        context.set_custom_status({"done": done, "total": total})
        yield context.call_activity("Step", done)
    return total


main = df.Orchestrator.create(orchestrator)
