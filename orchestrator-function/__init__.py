"""The audit job's orchestrator; the workflow itself is shared.orchestration.audit_orchestrator."""

import azure.durable_functions as df

from shared.orchestration import audit_orchestrator

main = df.Orchestrator.create(audit_orchestrator)
