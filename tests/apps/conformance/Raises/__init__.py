import azure.durable_functions as df


def orchestrator(context: df.DurableOrchestrationContext):
    yield context.call_activity("Hello", "before the failure")
    raise ValueError("the orchestrator gave up")


main = df.Orchestrator.create(orchestrator)
