"""python -m tools.query START END [--url URL] [--key KEY] [--json] [--cancel-on-interrupt]

A caller's command line for the audit API: submits a job, follows it the way Azure SDK clients
follow a 202 + Location operation (azure-core's PipelineClient and LRO poller with Location
polling, honouring Retry-After), shows a progress bar fed by the job's progress, and prints the
count (or the final status as JSON). On Ctrl-C it offers to cancel the job (DELETE on its status
URL), or cancels at once with --cancel-on-interrupt.

Exit codes: 0 the count was printed; 1 the job failed or was canceled; 2 the API refused the
request (its error message is printed); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from azure.core import PipelineClient
from azure.core.exceptions import AzureError, HttpResponseError
from azure.core.pipeline.policies import HeadersPolicy, RequestIdPolicy, RetryPolicy
from azure.core.polling import LROPoller
from azure.core.polling.base_polling import LocationPolling, LROBasePolling
from azure.core.rest import HttpRequest
from tqdm import tqdm

DEFAULT_URL = "http://127.0.0.1:7071/api"
KEY_VARIABLES = ("AUDIT_API_KEY", "KEY")  # the second is what `make run` tells you to export
FAILED, REFUSED, INTERRUPTED = 1, 2, 130


def _body(response: Any) -> dict:
    try:
        found = response.json()
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


class ProgressPolling(LROBasePolling):
    """Location polling that hands each poll's `progress` to a callback."""

    def __init__(self, on_progress: Any, **kwargs: Any) -> None:
        super().__init__(lro_algorithms=[LocationPolling()], **kwargs)
        self.on_progress = on_progress

    def update_status(self) -> None:
        super().update_status()
        progress = _body(self._pipeline_response.http_response).get("progress")
        if isinstance(progress, dict):
            self.on_progress(progress.get("done") or 0, progress.get("total"))


class Bar:
    """A tqdm bar over the job's ranges, created once the total is known."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.bar = enabled, None

    def update(self, done: int, total: int | None) -> None:
        if not self.enabled or not isinstance(total, int):
            return
        if self.bar is None:
            self.bar = tqdm(total=total, unit="range", desc="job", file=sys.stderr, leave=True)
        self.bar.n = min(done, total)
        self.bar.refresh()

    def close(self, done: bool) -> None:
        if self.bar is not None:
            if done:
                self.bar.n = self.bar.total
                self.bar.refresh()
            self.bar.close()


def client_for(url: str, key: str) -> PipelineClient:
    policies = [
        RequestIdPolicy(),  # the LRO poller tags its polls with the first request's id
        HeadersPolicy({"x-functions-key": key, "Accept": "application/json"}),
        RetryPolicy(retry_total=3),
    ]
    return PipelineClient(base_url=url, policies=policies)


def cancel(client: PipelineClient, status_url: str) -> str:
    response = client.send_request(HttpRequest("DELETE", status_url))
    if response.status_code == 202:
        return "canceled"
    return _body(response).get("error") or f"HTTP {response.status_code}"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.query", description=__doc__.split("\n")[2]
    )
    parser.add_argument("start", help="first day, e.g. 2021-10-01 (or 01/10/2021)")
    parser.add_argument("end", help="last day")
    parser.add_argument("--url", default=os.environ.get("AUDIT_API_URL", DEFAULT_URL))
    parser.add_argument("--key", help="function key (default: $AUDIT_API_KEY, else $KEY)")
    parser.add_argument("--idempotency-key", help="resubmitting with it finds the same job")
    parser.add_argument("--json", action="store_true", help="print the final status as JSON")
    parser.add_argument("--cancel-on-interrupt", action="store_true", help="Ctrl-C cancels")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


class RefusedError(Exception):
    """The API (or the network) refused the request; the message says why."""


def submit(client: PipelineClient, args: argparse.Namespace) -> Any:
    """POST-less submit (GET with the dates); the 202's pipeline response, for the poller."""
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else {}
    request = HttpRequest(
        "GET",
        f"{args.url.rstrip('/')}/submit/query",
        params={"s": args.start, "e": args.end},
        headers=headers,
    )
    retries = {} if args.idempotency_key else {"retry_total": 0}  # a retry could start two jobs
    try:
        first = client.send_request(request, _return_pipeline_response=True, **retries)
    except AzureError as error:
        raise RefusedError(f"cannot reach {args.url}: {error}") from None
    if first.http_response.status_code != 202:
        status = first.http_response.status_code
        raise RefusedError(_body(first.http_response).get("error") or f"HTTP {status}")
    return first


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    key = args.key or next((os.environ[v] for v in KEY_VARIABLES if os.environ.get(v)), "")
    client = client_for(args.url.rstrip("/"), key)
    try:
        if not key:
            raise RefusedError("no function key: pass --key or set AUDIT_API_KEY")
        first = submit(client, args)
    except RefusedError as error:
        print(f"error: {error}", file=sys.stderr)
        return REFUSED
    job = _body(first.http_response)
    print(f"job {job.get('id')}: {job.get('statusUri')}", file=sys.stderr)
    bar = Bar(not args.no_progress and not args.json)
    poller = LROPoller(
        client,
        first,
        lambda response: _body(response.http_response),
        ProgressPolling(bar.update, timeout=1),  # 1 s between polls when no Retry-After
    )
    try:
        final = poller.result()
    except KeyboardInterrupt:
        bar.close(done=False)
        return interrupted(client, job.get("statusUri", ""), args.cancel_on_interrupt)
    except HttpResponseError as error:  # a poll refused (401, 404, ...): the API's message
        bar.close(done=False)
        print(f"error: {_body(error.response).get('error') or error.message}", file=sys.stderr)
        return REFUSED
    except AzureError as error:  # the service went away while the job ran
        bar.close(done=False)
        print(f"error: lost {args.url}: {error}", file=sys.stderr)
        return FAILED
    bar.close(done=final.get("status") == "Completed")
    if args.json:
        print(json.dumps(final))
    if final.get("status") != "Completed":
        print(f"error: {final.get('error') or final.get('status')}", file=sys.stderr)
        return FAILED
    if not args.json:
        print(final.get("result"))
    return 0


def interrupted(client: PipelineClient, status_url: str, cancel_at_once: bool) -> int:
    """Ctrl-C: cancel the job if told to (or if the user says so), else leave it running."""
    if not cancel_at_once:
        print(f"\nCancel the job ({status_url})? [y/N] ", end="", file=sys.stderr, flush=True)
        try:
            answer = sys.stdin.readline()
        except KeyboardInterrupt:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print(f"left running: poll {status_url}", file=sys.stderr)
            return INTERRUPTED
    print(f"\n{cancel(client, status_url)}: {status_url}", file=sys.stderr)
    return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
