import azure.durable_functions as df


def orchestrator(context: df.DurableOrchestrationContext):
    job = context.get_input()
    options = df.RetryOptions(
        first_retry_interval_in_milliseconds=50, max_number_of_attempts=job["attempts"]
    )
    try:
        result = yield context.call_activity_with_retry("Flaky", options, job)
    except Exception as error:
        return {"failed": "attempt" in str(error)}
    return result


main = df.Orchestrator.create(orchestrator)
