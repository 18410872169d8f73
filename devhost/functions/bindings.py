"""A function's arguments from its bindings, as the worker builds them: the trigger's value,
the durable client's binding string, and an Out for each named output."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from devhost.functions.catalog import FunctionSpec

CLIENT_TYPES = ("durableClient", "orchestrationClient")


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
