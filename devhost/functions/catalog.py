"""Scan an app directory: host.json plus one function.json per folder, checked before serving.

As Core Tools does, a function whose function.json cannot be used is "in error": it is named
with its problems at start and not served (its route is a 404); the others serve. Only an app
without a usable host.json or without any function folder is refused whole.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from devhost.errors import AppLoadError
from devhost.functions.schedule import Schedule, ScheduleError, parse_schedule

TRIGGERS = {
    "httpTrigger": "http",
    "timerTrigger": "timer",
    "orchestrationTrigger": "orchestrator",
    "activityTrigger": "activity",
    "entityTrigger": "entity",
}
KNOWN_TYPES = {*TRIGGERS, "http", "durableClient", "orchestrationClient"}
DIRECTIONS = {"in", "out", "inout"}


@dataclass
class FunctionSpec:
    """One function folder: its bindings and where its code is."""

    name: str
    folder: Path
    script_file: str
    entry_point: str
    bindings: list[dict]
    kind: str = ""
    trigger: dict = field(default_factory=dict)
    schedule: Schedule | None = None  # a timer's, parsed (and so checked) at load

    @property
    def module_name(self) -> str:
        stem = Path(self.script_file).with_suffix("")
        parts = [p for p in stem.parts if p != "__init__"]
        return ".".join(["__app__", self.name, *parts])


def _check_binding(folder: str, index: int, binding: object) -> list[str]:
    where = f"{folder}/function.json binding {index}"
    if not isinstance(binding, dict):
        return [f"{where}: a binding must be a JSON object"]
    problems = []
    name, kind = binding.get("name"), binding.get("type")
    if not isinstance(name, str) or not name:
        problems.append(f"{where}: missing binding 'name'")
    if kind not in KNOWN_TYPES:
        problems.append(
            f"{where}: the binding type {kind!r} is not registered (the local host serves "
            f"{', '.join(sorted(KNOWN_TYPES))})"
        )
    direction = binding.get("direction", "in")
    if direction not in DIRECTIONS:
        problems.append(f"{where}: bad direction {direction!r}")
    if name == "$return" and direction != "out":
        problems.append(f"{where}: '$return' must have direction 'out'")
    return problems


def _read_json(path: Path, label: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise AppLoadError(f"{label}: cannot read ({error.__class__.__name__})") from None
    except ValueError as error:
        raise AppLoadError(f"{label}: invalid JSON ({error})") from None
    if not isinstance(data, dict):
        raise AppLoadError(f"{label}: must be a JSON object")
    return data


def load_spec(folder: Path) -> tuple[FunctionSpec | None, list[str]]:
    """Parse one folder's function.json; returns the spec (None if unusable) and problems."""
    name = folder.name
    try:
        data = _read_json(folder / "function.json", f"{name}/function.json")
    except AppLoadError as error:
        return None, [str(error)]
    bindings = data.get("bindings")
    if not isinstance(bindings, list) or not bindings:
        return None, [f"{name}/function.json: 'bindings' must be a non-empty list"]
    problems = [p for i, b in enumerate(bindings) for p in _check_binding(name, i, b)]
    triggers = [b for b in bindings if b.get("type") in TRIGGERS] if not problems else []
    if not problems and len(triggers) != 1:
        problems = [f"{name}/function.json: needs exactly one trigger binding"]
    schedule = None
    if not problems and triggers[0]["type"] == "timerTrigger":
        try:
            schedule = parse_schedule(str(triggers[0].get("schedule", "")), os.environ)
        except ScheduleError as error:
            problems = [f"{name}/function.json: {error}"]
    if problems:
        return None, problems
    script = data.get("scriptFile", "__init__.py")
    if not (folder / script).is_file():
        return None, [f"{name}: script file {script!r} not found"]
    spec = FunctionSpec(
        name=name,
        folder=folder,
        script_file=script,
        entry_point=data.get("entryPoint", "main"),
        bindings=bindings,
        kind=TRIGGERS[triggers[0]["type"]],
        trigger=triggers[0],
        schedule=schedule,
    )
    return (None if data.get("disabled") is True else spec), []


def load_catalog(app_dir: Path) -> tuple[dict, dict[str, FunctionSpec], dict[str, str]]:
    """host.json, every enabled usable function, and the problems of those in error."""
    if not (app_dir / "host.json").is_file():
        raise AppLoadError(f"{app_dir.name}: no host.json, so this is not a Functions app")
    host = _read_json(app_dir / "host.json", "host.json")
    folders = sorted(p for p in app_dir.iterdir() if (p / "function.json").is_file())
    if not folders:
        raise AppLoadError(f"{app_dir.name}: no function folder (a folder with function.json)")
    functions, in_error = {}, {}
    for folder in folders:
        spec, problems = load_spec(folder)
        if problems:
            in_error[folder.name] = "; ".join(problems)
        elif spec:
            functions[spec.name] = spec
    return host, functions, in_error
