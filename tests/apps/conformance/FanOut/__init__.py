import azure.durable_functions as df


def orchestrator(context: df.DurableOrchestrationContext):
    count = context.get_input()
    results = yield context.task_all([context.call_activity("Hello", str(i)) for i in range(count)])
    return results


main = df.Orchestrator.create(orchestrator)
