"""Host settings: host.json, local.settings.json and command-line flags in one object."""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from devhost.errors import AppLoadError

_TIMESPAN = re.compile(r"(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})")


def timespan_seconds(text: str) -> float:
    """'00:10:00' or '1.02:00:00' (the .NET TimeSpan format host.json uses)."""
    match = _TIMESPAN.fullmatch(text.strip())
    if not match:
        raise AppLoadError(f"host.json: functionTimeout {text!r} is not hh:mm:ss")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


@dataclass
class HostConfig:
    app_dir: Path
    data_dir: Path
    host: str
    port: int
    route_prefix: str
    hub_name: str
    max_activities: int
    max_orchestrators: int
    function_timeout: float
    function_key: str
    system_key: str
    worker_processes: int = 1
    function_key_origin: str | None = None  # said in the banner; None: configured, not shown
    system_key_origin: str | None = None
    cors_origins: tuple[str, ...] = ()  # local.settings.json Host.CORS ("*" or origins)
    cors_credentials: bool = False
    max_connections: int = 512
    header_timeout: float = 10.0
    idle_timeout: float = 30.0

    @property
    def public_base(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


DEFAULT_PORT = 7071


def read_local_settings(app_dir: Path) -> tuple[dict, dict]:
    """local.settings.json's 'Values' and 'Host' sections (empty when there is no file)."""
    path = app_dir / "local.settings.json"
    if not path.is_file():
        return {}, {}
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise AppLoadError(f"local.settings.json: invalid JSON ({error})") from None
    if not isinstance(settings, dict):
        raise AppLoadError("local.settings.json: must be a JSON object")
    return settings.get("Values") or {}, settings.get("Host") or {}


def load_local_settings(app_dir: Path) -> dict:
    """Copy local.settings.json 'Values' into the environment (what is already set wins) and
    return its 'Host' section (LocalHttpPort, CORS, CORSCredentials), as Core Tools reads it."""
    values, host = read_local_settings(app_dir)
    for key, value in values.items():
        os.environ.setdefault(key, str(value))
    return host


def local_http_port(host_section: dict, given: int | None) -> int:
    """--port, else Host.LocalHttpPort, else 7071 (Core Tools' order)."""
    if given is not None:
        return given
    port = host_section.get("LocalHttpPort", DEFAULT_PORT)
    if not isinstance(port, int) or not 0 < port < 65536:
        raise AppLoadError("local.settings.json: Host.LocalHttpPort must be a port number")
    return port


def _key(variable: str) -> tuple[str, str | None]:
    """A key and what the banner says of its origin: generated keys are shown (they are
    needed to call the host); a configured one is not, unless its origin is given too."""
    configured = os.environ.get(variable)
    if not configured:
        return secrets.token_urlsafe(24), "generated for this run"
    return configured, os.environ.get(f"{variable}_ORIGIN") or None


def build_config(
    app_dir: Path,
    host_json: dict,
    data_dir: Path,
    host: str,
    port: int,
    host_section: dict | None = None,
) -> HostConfig:
    extensions = host_json.get("extensions") or {}
    http = extensions.get("http") or {}
    durable = extensions.get("durableTask") or {}
    cores = os.cpu_count() or 1
    function_key, function_key_origin = _key("DEVHOST_FUNCTION_KEY")
    system_key, system_key_origin = _key("DEVHOST_SYSTEM_KEY")
    cors = str((host_section or {}).get("CORS") or "")
    if "*" in cors and (host_section or {}).get("CORSCredentials") is True:
        raise AppLoadError(
            "local.settings.json: Host.CORSCredentials cannot be true with CORS '*': "
            "list the allowed origins instead"
        )
    return HostConfig(
        app_dir=app_dir,
        data_dir=data_dir,
        host=host,
        port=port,
        route_prefix=str(http.get("routePrefix", "api")).strip("/"),
        hub_name=str(durable.get("hubName", "TestHubName")),
        max_activities=int(durable.get("maxConcurrentActivityFunctions", 10 * cores)),
        max_orchestrators=int(durable.get("maxConcurrentOrchestratorFunctions", 10 * cores)),
        function_timeout=timespan_seconds(host_json.get("functionTimeout", "00:30:00")),
        function_key=function_key,
        system_key=system_key,
        function_key_origin=function_key_origin,
        system_key_origin=system_key_origin,
        cors_origins=tuple(o.strip().rstrip("/") for o in cors.split(",") if o.strip()),
        cors_credentials=(host_section or {}).get("CORSCredentials") is True,
        worker_processes=_positive(os.environ.get("FUNCTIONS_WORKER_PROCESS_COUNT", "1")),
        max_connections=int(_number("DEVHOST_MAX_CONNECTIONS", 512, 1, 100_000)),
        header_timeout=_number("DEVHOST_HEADER_TIMEOUT_SECONDS", 10, 0.1, 3600),
        idle_timeout=_number("DEVHOST_IDLE_TIMEOUT_SECONDS", 30, 0.1, 3600),
    )


def _number(name: str, default: float, low: float, high: float) -> float:
    """A host setting from the environment, refused with its name when out of range."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise AppLoadError(f"{name} must be a number from {low:g} to {high:g}") from None
    if not low <= value <= high:
        raise AppLoadError(f"{name} must be a number from {low:g} to {high:g}")
    return value


def _positive(text: str) -> int:
    """FUNCTIONS_WORKER_PROCESS_COUNT: 1 to 10 in Azure; anything else is refused."""
    if not text.strip().isdigit() or not 1 <= int(text) <= 10:
        raise AppLoadError("FUNCTIONS_WORKER_PROCESS_COUNT must be a whole number from 1 to 10")
    return int(text)
