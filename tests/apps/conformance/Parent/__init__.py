import azure.durable_functions as df


def orchestrator(context: df.DurableOrchestrationContext):
    child = yield context.call_sub_orchestrator("Chain")
    try:
        yield context.call_sub_orchestrator("Raises")
    except Exception:
        return {"child": child, "failedChildSeen": True}
    return {"child": child, "failedChildSeen": False}


main = df.Orchestrator.create(orchestrator)
