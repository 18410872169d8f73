from datetime import timedelta

import azure.durable_functions as df


def orchestrator(context: df.DurableOrchestrationContext):
    started = context.current_utc_datetime
    context.set_custom_status("waiting")
    yield context.create_timer(started + timedelta(seconds=1))
    context.set_custom_status("fired")
    return (context.current_utc_datetime - started).total_seconds()


main = df.Orchestrator.create(orchestrator)
