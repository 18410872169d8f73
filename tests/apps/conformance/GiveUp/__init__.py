"""Calls Flaky with a retry policy and lets its last failure fail the instance (no catch)."""

import azure.durable_functions as df


def orchestrator(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=50, max_number_of_attempts=2)
    return (yield context.call_activity_with_retry("Flaky", options, context.get_input()))


main = df.Orchestrator.create(orchestrator)
