"""The `durableClient` binding string, shaped as the extension's BindingHelper writes it."""

from __future__ import annotations

import json
from urllib.parse import quote


def client_binding(public_base: str, rpc_base: str, hub: str, system_key: str) -> str:
    webhook = f"{public_base}/runtime/webhooks/durabletask"
    key = quote(system_key, safe="")
    qs = f"taskHub={hub}&connection=Storage&code={key}"
    instance = f"{webhook}/instances/INSTANCEID"
    create = f"{webhook}/orchestrators/{{functionName}}[/{{instanceId}}]"
    wait = "timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}"
    return json.dumps(
        {
            "taskHubName": hub,
            "creationUrls": {
                "createNewInstancePostUri": f"{create}?code={key}",
                "createAndWaitOnNewInstancePostUri": f"{create}?{wait}&code={key}",
            },
            "managementUrls": {
                "id": "INSTANCEID",
                "statusQueryGetUri": f"{instance}?{qs}",
                "sendEventPostUri": f"{instance}/raiseEvent/{{eventName}}?{qs}",
                "terminatePostUri": f"{instance}/terminate?reason={{text}}&{qs}",
                "rewindPostUri": f"{instance}/rewind?reason={{text}}&{qs}",
                "purgeHistoryDeleteUri": f"{instance}?{qs}",
                "restartPostUri": f"{instance}/restart?{qs}",
                "suspendPostUri": f"{instance}/suspend?reason={{text}}&{qs}",
                "resumePostUri": f"{instance}/resume?reason={{text}}&{qs}",
            },
            "baseUrl": webhook,
            "requiredQueryStringParameters": f"code={key}",
            "rpcBaseUrl": rpc_base,
            "httpBaseUrl": None,
            "connectionName": None,
        }
    )
