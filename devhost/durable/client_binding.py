"""The `durableClient` binding string, shaped as the extension's BindingHelper writes it, and
the per-instance management URLs it and the start webhook hand out."""

from __future__ import annotations

import json
from urllib.parse import quote

PLACEHOLDER = "INSTANCEID"


def management_urls(public_base: str, hub: str, system_key: str) -> dict[str, str]:
    """The instance URLs with INSTANCEID in place of the id."""
    webhook = f"{public_base}/runtime/webhooks/durabletask"
    qs = f"taskHub={hub}&connection=Storage&code={quote(system_key, safe='')}"
    instance = f"{webhook}/instances/{PLACEHOLDER}"
    return {
        "id": PLACEHOLDER,
        "statusQueryGetUri": f"{instance}?{qs}",
        "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{qs}",
        "terminatePostUri": f"{instance}/terminate?reason={{text}}&{qs}",
        "rewindPostUri": f"{instance}/rewind?reason={{text}}&{qs}",
        "purgeHistoryDeleteUri": f"{instance}?{qs}",
        "restartPostUri": f"{instance}/restart?{qs}",
        "suspendPostUri": f"{instance}/suspend?reason={{text}}&{qs}",
        "resumePostUri": f"{instance}/resume?reason={{text}}&{qs}",
    }


def instance_links(urls: dict[str, str], instance_id: str) -> dict[str, str]:
    return {k: v.replace(PLACEHOLDER, quote(instance_id, safe="")) for k, v in urls.items()}


def client_binding(public_base: str, rpc_base: str, hub: str, system_key: str) -> str:
    webhook = f"{public_base}/runtime/webhooks/durabletask"
    key = quote(system_key, safe="")
    create = f"{webhook}/orchestrators/{{functionName}}[/{{instanceId}}]"
    wait = "timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}"
    return json.dumps(
        {
            "taskHubName": hub,
            "creationUrls": {
                "createNewInstancePostUri": f"{create}?code={key}",
                "createAndWaitOnNewInstancePostUri": f"{create}?{wait}&code={key}",
            },
            "managementUrls": management_urls(public_base, hub, system_key),
            "baseUrl": webhook,
            "requiredQueryStringParameters": f"code={key}",
            "rpcBaseUrl": rpc_base,
            "httpBaseUrl": None,
            "connectionName": None,
        }
    )
