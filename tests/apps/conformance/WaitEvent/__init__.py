import azure.durable_functions as df


def orchestrator(context: df.DurableOrchestrationContext):
    context.set_custom_status({"stage": "waiting for approval"})
    approval = yield context.wait_for_external_event("Approval")
    context.set_custom_status({"stage": "approved"})
    return approval


main = df.Orchestrator.create(orchestrator)
