import azure.durable_functions as df


def orchestrator(context: df.DurableOrchestrationContext):
    return context.get_input()
    yield  # a generator, as orchestrators are


main = df.Orchestrator.create(orchestrator)
