from datetime import timedelta

import azure.durable_functions as df


def orchestrator(context: df.DurableOrchestrationContext):
    event = context.wait_for_external_event("Go")
    timeout = context.create_timer(context.current_utc_datetime + timedelta(seconds=60))
    winner = yield context.task_any([event, timeout])
    if winner == event:
        timeout.cancel()
        return {"winner": "event", "value": event.result}
    return {"winner": "timer"}


main = df.Orchestrator.create(orchestrator)
