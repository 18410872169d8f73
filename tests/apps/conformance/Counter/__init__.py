import azure.durable_functions as df


def orchestrator(context: df.DurableOrchestrationContext):
    value = context.get_input() or 0
    yield context.call_activity("Hello", str(value))
    if value < 3:
        context.continue_as_new(value + 1)
        return None
    return value


main = df.Orchestrator.create(orchestrator)
