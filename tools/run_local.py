"""make run: Azurite, demo data and the local host, with ready-to-paste curl commands.

Ctrl-C stops everything. State lives in .data/ (Azurite) and .devhost/ (orchestrations).
What it prints is the block README.md shows (tests/test_first_run.py compares the two): any
setting it cannot use is refused in one line, never a traceback.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import date

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient

from devhost.config import local_http_port, read_local_settings
from devhost.errors import AppLoadError
from tools.azurite import ROOT, Azurite, PortInUseError, ensure_free
from tools.seed import expected_count, generate, upload

DEFAULT_AZURITE_PORT = 10002
DEMO = {"start": date(2021, 10, 1), "days": 92, "per_day": 300}
RANGE = ("2021-10-10", "2021-12-10")
HOST_START_TIMEOUT = 120  # seconds: importing every function on a busy 2-core box takes a while


class SettingError(ValueError):
    """A setting make run cannot use; its message names the setting and what is wrong."""


def seed_once(connection_string: str) -> None:
    """The demo data, once: a later run keeps what is there (and any table the user changed)."""
    table = TableClient.from_connection_string(connection_string, "audit")
    with contextlib.suppress(ResourceNotFoundError):  # no table yet: seed it
        if next(iter(table.list_entities(results_per_page=1)), None) is not None:
            print("demo data already in the 'audit' table", flush=True)
            return
    count = upload(connection_string, "audit", generate(**DEMO))
    print(f"seeded {count} demo entities into the 'audit' table", flush=True)


def local_secret() -> str:
    """This checkout's IDEMPOTENCY_SECRET: generated once, kept (0600) with the local data, so
    an Idempotency-Key finds its job across restarts."""
    path = ROOT / ".data" / "idempotency-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text().strip()


def port_setting(name: str, default: int, zero_allowed: bool = False) -> int:
    """The port the environment variable `name` gives (`default` when unset or empty), so that
    PORT=abc is one line naming PORT rather than int()'s traceback."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    port = int(text) if text.isascii() and text.isdigit() else -1
    if not (0 if zero_allowed else 1) <= port <= 65535:
        lowest = 0 if zero_allowed else 1
        raise SettingError(f"{name} must be a port number ({lowest}-65535), not {text!r}")
    return port


def host_port() -> int:
    """PORT, else local.settings.json Host.LocalHttpPort, else 7071 (as the host reads it); the
    file is checked here so that a broken one is refused before anything starts."""
    port = port_setting("PORT", 0)
    try:
        values, host = read_local_settings(ROOT)
        if not isinstance(values, dict) or not isinstance(host, dict):
            raise AppLoadError("local.settings.json: Values and Host must be JSON objects")
        return port or local_http_port(host, None)
    except AppLoadError as error:
        raise SettingError(str(error)) from None


def wait_until_serving(port: int, host: subprocess.Popen, timeout: float) -> bool:
    """Wait until the host answers its ping (False if it exited first). The host prints its
    banner (the KEY= lines) after it starts listening and before it serves any request, so an
    answer means the banner is out, and what follows it here is printed after it: an open port
    alone could let "Ready." come first."""
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/admin/host/ping"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    while time.monotonic() < deadline:
        if host.poll() is not None:
            return False
        try:
            with opener.open(url, timeout=2) as answer:
                if answer.status == 200:
                    return True
        except (OSError, http.client.HTTPException):  # not listening yet, or not answering
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the local host did not answer on 127.0.0.1:{port} within {timeout:.0f} s")


def ready_text(port: int, own_key: bool, expected: int) -> str:
    """What to do next, after the host's banner."""
    base = f"http://127.0.0.1:{port}/api"
    which_key = (
        "KEY is your DEVHOST_FUNCTION_KEY" if own_key else "Export the key above (the KEY= line)"
    )
    return f"""
Ready. {which_key}, then submit a job (expected result for
{RANGE[0]}..{RANGE[1]}: {expected}):

  curl -i -H "x-functions-key: $KEY" "{base}/submit/query?s={RANGE[0]}&e={RANGE[1]}"

Then poll the statusUri it returns, or cancel the job with DELETE on it:

  curl -i -H "x-functions-key: $KEY" "{base}/status/<id>"

Ctrl-C stops the host and Azurite."""


def run_host(azurite: Azurite, port: int) -> int:
    """Seed, start the host, say what to do next, and wait for it (or Ctrl-C)."""
    own_key = os.environ.get("DEVHOST_FUNCTION_KEY")
    key = own_key or secrets.token_urlsafe(24)
    # a generated key is shown by the host's banner (KEY=...); the user's own never is
    shown = {} if own_key else {"DEVHOST_FUNCTION_KEY_ORIGIN": "generated for this run"}
    seed_once(azurite.connection_string)
    expected = expected_count(generate(**DEMO), *RANGE)
    env = {
        "FUNCTIONS_WORKER_PROCESS_COUNT": "2",  # fan-outs use both cores
        "JOB_RETENTION_SCHEDULE": "0 0 * * * *",  # hourly here: finished jobs leave sooner
        "STATUS_RETRY_AFTER_SECONDS": "1",  # a local job takes seconds: poll each second
        **os.environ,
        "AUDIT_TABLE_CONNECTION_STRING": azurite.connection_string,
        "AzureWebJobsStorage": azurite.connection_string,  # range results (blobs)
        "DEVHOST_FUNCTION_KEY": key,
        **shown,
        "IDEMPOTENCY_SECRET": os.environ.get("IDEMPOTENCY_SECRET") or local_secret(),
    }
    host = subprocess.Popen(
        [sys.executable, "-m", "devhost", "--app", str(ROOT), "--port", str(port)], env=env
    )
    try:
        if not wait_until_serving(port, host, HOST_START_TIMEOUT):
            return host.wait() or 1  # the host said why, in its own line
        print(ready_text(port, bool(own_key), expected), flush=True)
        return host.wait()
    except TimeoutError as error:
        print(f"make run: {error}", file=sys.stderr, flush=True)
        return 1
    except (KeyboardInterrupt, SystemExit):
        return 0
    finally:
        host.terminate()
        try:
            host.wait(timeout=15)
        except subprocess.TimeoutExpired:
            host.kill()
            host.wait(timeout=15)


def main() -> int:
    if isinstance(sys.stdout, io.TextIOWrapper):  # each line out at once, also into a pipe
        sys.stdout.reconfigure(line_buffering=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # run the cleanup below on SIGTERM too
    try:
        port = host_port()
        azurite_port = port_setting("AZURITE_PORT", DEFAULT_AZURITE_PORT)
        blob_port = port_setting("AZURITE_BLOB_PORT", 0, zero_allowed=True) or None  # any free
        ensure_free(port, "the local host", "PORT")
        azurite = Azurite(ROOT / ".data" / "azurite", azurite_port, blob_port).start()
    except (SettingError, PortInUseError) as error:
        print(f"make run: {error}", file=sys.stderr, flush=True)
        return 1
    except (OSError, RuntimeError) as error:  # not installed, exited early, timed out
        print(f"make run: Azurite did not start: {error}", file=sys.stderr, flush=True)
        return 1
    except (KeyboardInterrupt, SystemExit):
        return 0
    try:
        return run_host(azurite, port)
    except (KeyboardInterrupt, SystemExit):  # while seeding
        return 0
    finally:
        azurite.stop()


if __name__ == "__main__":
    sys.exit(main())
