"""Calls Sleepy with two attempts: a sleep past functionTimeout fails both."""

import azure.durable_functions as df


def orchestrator(context: df.DurableOrchestrationContext):
    retry = df.RetryOptions(first_retry_interval_in_milliseconds=100, max_number_of_attempts=2)
    return (yield context.call_activity_with_retry("Sleepy", retry, context.get_input()))


main = df.Orchestrator.create(orchestrator)
