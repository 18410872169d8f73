"""call_http: the durable HTTP response, or the error the task failed with."""

import azure.durable_functions as df


def orchestrator(context: df.DurableOrchestrationContext):
    job = context.get_input()
    try:
        return (yield context.call_http(job["method"], job["url"], content=job.get("content")))
    except Exception as error:
        return {"error": str(error)}


main = df.Orchestrator.create(orchestrator)
