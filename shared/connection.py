"""Where the audit table is and how to authenticate to it, resolved once per process.

In order: AUDIT_TABLE_CONNECTION_STRING (local, emulator); AUDIT_TABLE_ENDPOINT with
DefaultAzureCredential (managed identity, no secret); AppConfigEndpoint -> App Configuration key
`storage-account-connection-string` (label `async-http-api`) -> Key Vault reference -> secret.
Messages name settings, never values: they end up in logs.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

APP_CONFIG_KEY = "storage-account-connection-string"
APP_CONFIG_LABEL = "async-http-api"


class ConfigurationError(RuntimeError):
    """The audit table cannot be reached with the app's settings."""


@dataclass(frozen=True)
class TableTarget:
    """A connection string, or an endpoint plus a credential."""

    connection_string: str | None = None
    endpoint: str | None = None
    credential: Any = None

    def __repr__(self) -> str:  # never print the secret
        kind = "connection string" if self.connection_string else f"endpoint {self.endpoint}"
        return f"TableTarget({kind})"


def _default_credential() -> Any:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def _key_vault_secret_uri(setting: Any) -> str:
    """The secret URI inside an App Configuration Key Vault reference."""
    uri = getattr(setting, "secret_id", None)
    if not uri:
        try:
            uri = json.loads(setting.value or "")["uri"]
        except (ValueError, KeyError, TypeError):
            uri = None
    if not uri:
        raise ConfigurationError(
            f"App Configuration key '{APP_CONFIG_KEY}' is not a Key Vault reference."
        )
    return uri


def _from_app_configuration(endpoint: str, credential: Any, client_kwargs: dict) -> str:
    from azure.appconfiguration import AzureAppConfigurationClient
    from azure.core.exceptions import AzureError
    from azure.keyvault.secrets import KeyVaultSecretIdentifier, SecretClient

    try:
        config = AzureAppConfigurationClient(endpoint, credential, **client_kwargs)
        setting = config.get_configuration_setting(key=APP_CONFIG_KEY, label=APP_CONFIG_LABEL)
    except AzureError as error:
        raise ConfigurationError(
            f"Could not read '{APP_CONFIG_KEY}' from App Configuration ({type(error).__name__})."
        ) from None
    if setting is None:
        raise ConfigurationError(f"App Configuration has no key '{APP_CONFIG_KEY}'.")
    try:
        secret_id = KeyVaultSecretIdentifier(_key_vault_secret_uri(setting))
    except ValueError:
        raise ConfigurationError("The Key Vault reference is not a valid secret URI.") from None
    try:
        secrets = SecretClient(secret_id.vault_url, credential, **client_kwargs)
        value = secrets.get_secret(secret_id.name, secret_id.version).value
    except AzureError as error:
        raise ConfigurationError(
            f"Could not read the Key Vault secret '{secret_id.name}' ({type(error).__name__})."
        ) from None
    if not value:
        raise ConfigurationError(f"The Key Vault secret '{secret_id.name}' is empty.")
    return value


def resolve_target(
    env: Mapping[str, str],
    credential_factory: Callable[[], Any] = _default_credential,
    **client_kwargs: Any,
) -> TableTarget:
    """Find the audit table from the settings; client_kwargs reach the Azure SDK clients."""
    connection_string = env.get("AUDIT_TABLE_CONNECTION_STRING", "").strip()
    if connection_string:
        return TableTarget(connection_string=connection_string)
    endpoint = env.get("AUDIT_TABLE_ENDPOINT", "").strip()
    if endpoint:
        return TableTarget(endpoint=endpoint, credential=credential_factory())
    app_config = env.get("AppConfigEndpoint", "").strip()
    if app_config:
        secret = _from_app_configuration(app_config, credential_factory(), client_kwargs)
        return TableTarget(connection_string=secret)
    raise ConfigurationError(
        "No audit table configured: set AUDIT_TABLE_CONNECTION_STRING, AUDIT_TABLE_ENDPOINT "
        "or AppConfigEndpoint."
    )


class TargetCache:
    """Keeps a resolved target for ttl seconds, so a fan-out does not hit Key Vault per range."""

    def __init__(self, resolve: Callable[[], TableTarget], ttl: float, clock=time.monotonic):
        self._resolve, self._ttl, self._clock = resolve, ttl, clock
        self._lock = threading.Lock()
        self._value: TableTarget | None = None
        self._expires = 0.0

    def get(self) -> TableTarget:
        with self._lock:
            now = self._clock()
            if self._value is None or now >= self._expires:
                self._value = self._resolve()
                self._expires = now + self._ttl
            return self._value
