import azure.durable_functions as df


def orchestrator(context: df.DurableOrchestrationContext):
    first = yield context.call_activity("Hello", "Tokyo")
    second = yield context.call_activity("HelloAsync", "Seattle")
    third = yield context.call_activity("Hello", "London")
    return [first, second, third]


main = df.Orchestrator.create(orchestrator)
