"""A function's arguments from its bindings, as the worker builds them: the trigger's value,
the durable client's binding string, and an Out for each named output."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from azure.functions import meta
from azure.functions.durable_functions import (
    ActivityTriggerConverter,
    EnitityTriggerConverter,
    OrchestrationTriggerConverter,
)

from devhost.functions.catalog import FunctionSpec

CLIENT_TYPES = ("durableClient", "orchestrationClient")
# the azure-functions library's own converters, as the worker applies them
CONVERTERS = {
    "orchestrator": OrchestrationTriggerConverter,
    "activity": ActivityTriggerConverter,
    "entity": EnitityTriggerConverter,
}


def durable_input(kind: str, payload: str) -> Any:
    """What the worker hands a durable function: its context object, or an activity's input
    decoded (custom classes rebuilt with their from_json, plain text passed through)."""
    return CONVERTERS[kind].decode(meta.Datum(payload, "string"), trigger_metadata=None)


def durable_output(kind: str, value: Any) -> str:
    """A durable function's return value as the JSON text the extension records (an
    activity's custom classes through their to_json)."""
    text = CONVERTERS[kind].encode(value, expected_type=None).value
    return text if isinstance(text, str) else json.dumps(text)


class Out:
    """A named output binding (the worker's func.Out)."""

    def __init__(self) -> None:
        self.value: Any = None

    def set(self, value: Any) -> None:
        self.value = value

    def get(self) -> Any:
        return self.value


def arguments(
    spec: FunctionSpec, trigger_value: Any, durable_binding: Callable[[], str]
) -> tuple[dict[str, Any], dict[str, Out]]:
    """The keyword arguments of one call, and its named outputs (also among the arguments)."""
    kwargs: dict[str, Any] = {}
    outputs: dict[str, Out] = {}
    for binding in spec.bindings:
        name, kind = binding["name"], binding["type"]
        if binding is spec.trigger:
            kwargs[name] = trigger_value
        elif kind in CLIENT_TYPES:
            kwargs[name] = durable_binding()
        elif binding.get("direction") == "out" and name != "$return":
            kwargs[name] = outputs[name] = Out()
    return kwargs, outputs
