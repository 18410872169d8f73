"""Settings and secret resolution with the real Azure SDK clients over a fake transport.

App Configuration, Key Vault and Azure AD cannot exist here, so the transport answers like their
REST APIs; the clients' own parsing, challenge handling and our caching all really run.
"""

from __future__ import annotations

import io
import json
import time
from urllib.parse import urlsplit

import pytest
import requests
from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.pipeline.transport import RequestsTransport
from requests.adapters import BaseAdapter

from shared.connection import (
    APP_CONFIG_KEY,
    APP_CONFIG_LABEL,
    ConfigurationError,
    TargetCache,
    resolve_target,
)

APP_CONFIG = "https://audit-config.azconfig.io"
VAULT = "https://audit-kv.vault.azure.net"
SECRET = "DefaultEndpointsProtocol=https;AccountName=prod;AccountKey=c2VjcmV0LWtleS0xMjM0NQ=="
KV_CONTENT_TYPE = "application/vnd.microsoft.appconfig.keyvaultref+json;charset=utf-8"
CHALLENGE = (
    'Bearer authorization="https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000",'
    ' resource="https://vault.azure.net"'
)


class FakeCredential:
    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, *scopes, **_) -> AccessToken:
        self.scopes.extend(scopes)
        return AccessToken("fake-token", int(time.time()) + 3600)

    def get_token_info(self, *scopes, options=None) -> AccessTokenInfo:
        self.scopes.extend(scopes)
        return AccessTokenInfo("fake-token", int(time.time()) + 3600)


class FakeAzure(BaseAdapter):
    """A requests adapter answering App Configuration's /kv and Key Vault's /secrets like
    their REST APIs; the SDK's own RequestsTransport and pipeline run on top of it."""

    def __init__(self, reference: str | None, secret_status: int = 200) -> None:
        super().__init__()
        self.reference, self.secret_status = reference, secret_status
        self.calls: list[tuple[str, str, bool]] = []

    def transport(self) -> RequestsTransport:
        session = requests.Session()
        session.mount("https://", self)
        return RequestsTransport(session=session, session_owner=False)

    def close(self) -> None:
        pass

    def _reply(self, request, status: int, body: dict | None, headers: dict | None = None):
        raw = requests.Response()
        raw.status_code = status
        raw.headers.update({"Content-Type": "application/json", **(headers or {})})
        content = json.dumps(body).encode() if body is not None else b""
        raw._content = content
        raw.raw = io.BytesIO(content)
        raw.url = request.url
        raw.request = request
        return raw

    def send(self, request, **_):
        url = urlsplit(request.url)
        authorized = "Authorization" in request.headers
        self.calls.append((url.netloc, url.path, authorized))
        if url.netloc == urlsplit(APP_CONFIG).netloc:
            assert authorized, "App Configuration was called without a token"
            if url.path != f"/kv/{APP_CONFIG_KEY}" or f"label={APP_CONFIG_LABEL}" not in url.query:
                return self._reply(request, 404, {"title": "Not found"})
            if self.reference is None:
                return self._reply(request, 404, {"title": "Not found"})
            return self._reply(
                request,
                200,
                {
                    "etag": "e1",
                    "key": APP_CONFIG_KEY,
                    "label": APP_CONFIG_LABEL,
                    "content_type": KV_CONTENT_TYPE,
                    "value": json.dumps({"uri": self.reference}),
                    "tags": {},
                    "locked": False,
                    "last_modified": "2024-01-01T00:00:00+00:00",
                },
            )
        if url.netloc == urlsplit(VAULT).netloc:
            if not authorized:  # Key Vault's challenge-based auth: first call is refused
                return self._reply(request, 401, None, {"WWW-Authenticate": CHALLENGE})
            if self.secret_status != 200:
                return self._reply(
                    request,
                    self.secret_status,
                    {"error": {"code": "Forbidden", "message": "denied"}},
                )
            name_version = url.path.removeprefix("/secrets/").rstrip("/")
            return self._reply(
                request,
                200,
                {
                    "value": SECRET,
                    "id": f"{VAULT}/secrets/{name_version}",
                    "attributes": {"enabled": True, "created": 1, "updated": 1},
                },
            )
        return self._reply(request, 404, {"error": "unknown host"})


def resolve_via(transport: FakeAzure, credential: FakeCredential | None = None):
    credential = credential or FakeCredential()
    env = {"AppConfigEndpoint": APP_CONFIG}
    return resolve_target(env, lambda: credential, transport=transport.transport(), retry_total=0)


@pytest.mark.parametrize(
    ("reference", "path"),
    [
        (f"{VAULT}/secrets/audit-table/0123456789abcdef", "/secrets/audit-table/0123456789abcdef"),
        (f"{VAULT}/secrets/audit-table", "/secrets/audit-table/"),
        (f"{VAULT}/secrets/audit-table/", "/secrets/audit-table/"),
    ],
)
def test_a_key_vault_reference_with_or_without_version_resolves_the_secret(reference, path):
    transport, credential = FakeAzure(reference), FakeCredential()
    target = resolve_via(transport, credential)
    assert target.connection_string == SECRET
    secret_calls = [c for c in transport.calls if c[0] == urlsplit(VAULT).netloc]
    assert secret_calls[-1] == (urlsplit(VAULT).netloc, path, True)
    assert set(credential.scopes) == {
        "https://azconfig.io/.default",
        "https://vault.azure.net/.default",
    }
    assert SECRET not in repr(target)


def test_the_resolved_value_is_cached_for_its_ttl():
    transport = FakeAzure(f"{VAULT}/secrets/audit-table")
    now = [100.0]
    cache = TargetCache(lambda: resolve_via(transport), ttl=300, clock=lambda: now[0])
    first = cache.get()
    calls = len(transport.calls)
    for _ in range(20):  # a fan-out of 20 ranges
        assert cache.get() is first
    assert len(transport.calls) == calls
    now[0] += 301
    assert cache.get() is not first
    assert len(transport.calls) > calls


@pytest.mark.parametrize(
    ("transport", "message"),
    [
        (FakeAzure(None), "Could not read 'storage-account-connection-string'"),
        (
            FakeAzure(f"{VAULT}/secrets/audit-table", secret_status=403),
            "Could not read the Key Vault",
        ),
        (FakeAzure("https://example.invalid/not-a-secret-uri"), "not a valid secret URI"),
    ],
)
def test_a_broken_configuration_fails_clearly_without_the_secret(transport, message):
    with pytest.raises(ConfigurationError) as error:
        resolve_via(transport)
    assert message in str(error.value)
    assert SECRET not in str(error.value)
    assert error.value.__cause__ is None  # no SDK exception text chained into logs


def test_settings_are_tried_in_order():
    marker = object()
    both = {"AUDIT_TABLE_CONNECTION_STRING": SECRET, "AUDIT_TABLE_ENDPOINT": "https://x"}
    assert resolve_target(both).connection_string == SECRET
    target = resolve_target(
        {"AUDIT_TABLE_ENDPOINT": "https://acct.table.core.windows.net"}, lambda: marker
    )
    assert target.endpoint.endswith("table.core.windows.net")
    assert target.credential is marker and target.connection_string is None
    with pytest.raises(ConfigurationError, match="AUDIT_TABLE_CONNECTION_STRING"):
        resolve_target({})
