"""make run: Azurite, demo data and the local host, with ready-to-paste curl commands.

Ctrl-C stops everything. State lives in .data/ (Azurite) and .devhost/ (orchestrations).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
from datetime import date

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient

from devhost.config import local_http_port, read_local_settings
from tools.azurite import ROOT, Azurite, PortInUseError, ensure_free, wait_for_port
from tools.seed import expected_count, generate, upload

AZURITE_PORT = int(os.environ.get("AZURITE_PORT", "10002"))
AZURITE_BLOB_PORT = int(os.environ.get("AZURITE_BLOB_PORT", "0")) or None  # None: any free one
DEMO = {"start": date(2021, 10, 1), "days": 92, "per_day": 300}
RANGE = ("2021-10-10", "2021-12-10")


def seed_once(connection_string: str) -> None:
    table = TableClient.from_connection_string(connection_string, "audit")
    with contextlib.suppress(ResourceNotFoundError):  # no table yet: seed it
        if next(iter(table.list_entities(results_per_page=1)), None) is not None:
            print("demo data already in the 'audit' table")
            return
    count = upload(connection_string, "audit", generate(**DEMO))
    print(f"seeded {count} demo entities into the 'audit' table")


def local_secret() -> str:
    """This checkout's IDEMPOTENCY_SECRET: generated once, kept (0600) with the local data, so
    an Idempotency-Key finds its job across restarts."""
    path = ROOT / ".data" / "idempotency-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text().strip()


def host_port() -> int:
    """PORT, else local.settings.json Host.LocalHttpPort, else 7071 (as the host reads it)."""
    if os.environ.get("PORT"):
        return int(os.environ["PORT"])
    return local_http_port(read_local_settings(ROOT)[1], None)


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # run the cleanup below on SIGTERM too
    port = host_port()
    try:
        ensure_free(port, "the local host", "PORT")
        azurite = Azurite(ROOT / ".data" / "azurite", AZURITE_PORT, AZURITE_BLOB_PORT).start()
    except PortInUseError as error:
        print(f"make run: {error}", file=sys.stderr)
        return 1
    own_key = os.environ.get("DEVHOST_FUNCTION_KEY")
    key = own_key or secrets.token_urlsafe(24)
    # a generated key is shown by the host's banner (KEY=...); the user's own never is
    shown = {} if own_key else {"DEVHOST_FUNCTION_KEY_ORIGIN": "generated for this run"}
    try:
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
            wait_for_port(port, 30, host)
            base = f"http://127.0.0.1:{port}/api"
            which_key = (
                "KEY is your DEVHOST_FUNCTION_KEY"
                if own_key
                else ("Export the key above (the KEY= line)")
            )
            print(
                f"""
Ready. {which_key}, then submit a job (expected result for
{RANGE[0]}..{RANGE[1]}: {expected}):

  curl -i -H "x-functions-key: $KEY" "{base}/submit/query?s={RANGE[0]}&e={RANGE[1]}"

Then poll the statusUri it returns, or cancel the job with DELETE on it:

  curl -i -H "x-functions-key: $KEY" "{base}/status/<id>"

Ctrl-C stops the host and Azurite.""",
                flush=True,
            )
            return host.wait()
        except (KeyboardInterrupt, SystemExit):
            return 0
        finally:
            host.terminate()
            host.wait(timeout=15)
    finally:
        azurite.stop()


if __name__ == "__main__":
    sys.exit(main())
