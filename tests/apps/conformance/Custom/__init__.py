"""Custom classes into and out of activities, in a worker process and in the host."""

import azure.durable_functions as df
from money import Money


def orchestrator(context: df.DurableOrchestrationContext):
    taxed = yield context.call_activity("AddTax", Money(1000, "EUR"))
    twice = yield context.call_activity("AddTaxAsync", taxed)
    return {"type": type(twice).__name__, "cents": twice.cents, "currency": twice.currency}


main = df.Orchestrator.create(orchestrator)
