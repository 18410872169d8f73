"""Submit a job and report on it: the two HTTP functions' logic, free of binding details.

The status view is an allow-list: id, status, result, progress and a generic error. Input,
history, exception text and management URLs never leave this module.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func

from shared.dates import DateRange, DateRangeError, validate_range
from shared.orchestration import ORCHESTRATOR, job_input
from shared.responses import error_response, json_response
from shared.settings import Settings

log = logging.getLogger(__name__)

JOB_ID = re.compile(r"[0-9a-fA-F]{32}")
IDEMPOTENCY_KEY = re.compile(r"[!-~]{1,128}")
NOT_FOUND = "Job not found."
UNAVAILABLE = "The job service is unavailable; retry later."
FAILED = "The job failed."
CANCELED = "The job was canceled."
ALREADY_FINISHED = "The job has already finished."
CANCEL_REASON = "Canceled by the caller."
RUNNING_STATES = {"Pending", "Running", "ContinuedAsNew", "Suspended"}


def status_url(request_url: str, instance_id: str, public_base_url: str = "") -> str:
    """The caller-facing status URL: from PUBLIC_BASE_URL when set, else from the request."""
    if public_base_url:
        return f"{public_base_url}/status/{instance_id}"
    parts = urlsplit(request_url)
    cut = max(parts.path.rfind("/submit/"), parts.path.rfind("/status/"))
    prefix = parts.path[:cut] if cut >= 0 else "/api"
    return f"{parts.scheme}://{parts.netloc}{prefix}/status/{instance_id}"


def idempotent_instance_id(key: str, secret: str) -> str:
    """A job id derived from the caller's key, so a retried submit finds its first job.

    Keyed with the app's IDEMPOTENCY_SECRET: a plain hash let anyone who guessed another
    caller's key (`report-2021-q4`) compute that job's id and read it."""
    return hmac.new(secret.encode(), f"audit-idempotency:{key}".encode(), "sha256").hexdigest()[:32]


def _stored_range(status: Any) -> tuple[str, str] | None:
    raw = getattr(status, "input_", None)
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
        return data["start"], data["end"]
    except (ValueError, TypeError, KeyError):
        return None


def _poll_headers(req: func.HttpRequest, instance_id: str, settings: Settings) -> dict:
    own_url = status_url(req.url, instance_id, settings.public_base_url)
    return {"Location": own_url, "Retry-After": str(settings.status_retry_after_seconds)}


def _accepted(req: func.HttpRequest, instance_id: str, settings: Settings) -> func.HttpResponse:
    """202 with the job's id and status URL (a submit, or a cancel)."""
    headers = _poll_headers(req, instance_id, settings)
    return json_response(202, {"id": instance_id, "statusUri": headers["Location"]}, headers)


async def _start_idempotent(client: Any, key: str, job: dict, secret: str) -> str | None:
    """Start the job under the key's id; None when the key already names other dates."""
    instance_id = idempotent_instance_id(key, secret)
    wanted = (job["start"], job["end"])
    for _ in range(2):  # a concurrent submit with the same key may win the start
        existing = await client.get_status(instance_id, show_input=True)
        if existing:
            return instance_id if _stored_range(existing) == wanted else None
        try:
            return await client.start_new(ORCHESTRATOR, instance_id, job)
        except Exception:  # noqa: BLE001 - the SDK raises bare Exception on a refused start
            log.info("start of %s refused; checking whether another submit won", instance_id)
    raise RuntimeError("could not start or find the idempotent job")


async def submit(req: func.HttpRequest, client: Any, settings: Settings) -> func.HttpResponse:
    """Validate the dates, start the orchestration, answer 202 with the status URL."""
    try:
        dates: DateRange = validate_range(
            req.params.get("s"), req.params.get("e"), settings.max_range_days
        )
    except DateRangeError as error:
        return error_response(400, str(error))
    key = req.headers.get("Idempotency-Key")
    if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
        return error_response(400, "Invalid Idempotency-Key header.")
    if key is not None and not settings.idempotency_secret:
        log.error("an Idempotency-Key needs the IDEMPOTENCY_SECRET app setting")
        return error_response(503, UNAVAILABLE, {"Retry-After": "10"})
    job = job_input(dates.start, dates.end, settings)
    try:
        if key is None:
            instance_id = await client.start_new(ORCHESTRATOR, None, job)
        else:
            instance_id = await _start_idempotent(client, key, job, settings.idempotency_secret)
    except Exception:
        log.exception("could not start the audit job")
        return error_response(503, UNAVAILABLE, {"Retry-After": "10"})
    if instance_id is None:
        return error_response(409, "Idempotency-Key already used with different dates.")
    return _accepted(req, instance_id, settings)


def public_status(instance_id: str, status: Any) -> tuple[int, dict]:
    """The allow-listed view of an orchestration status, with its HTTP code."""
    runtime = status.runtime_status.value if status.runtime_status else "Pending"
    if runtime in RUNNING_STATES:
        custom = status.custom_status if isinstance(status.custom_status, dict) else {}
        done = custom.get("done", 0)
        total = custom.get("total")
        view = {
            "id": instance_id,
            "status": "Pending" if runtime == "Pending" else "Running",
            "result": None,
            "progress": {
                "done": done if isinstance(done, int) else 0,
                "total": total if isinstance(total, int) else None,
            },
        }
        return 202, view
    if runtime == "Completed":
        return 200, {"id": instance_id, "status": "Completed", "result": status.output}
    if runtime == "Failed":
        return 200, {"id": instance_id, "status": "Failed", "result": None, "error": FAILED}
    # a caller cancels by terminating: the one who started it sees "Canceled"
    return 200, {"id": instance_id, "status": "Canceled", "result": None, "error": CANCELED}


async def _find(req: func.HttpRequest, client: Any) -> tuple[str, Any, func.HttpResponse | None]:
    """The job the route names and its status, or the error answer (404, 503) instead."""
    instance_id = req.route_params.get("id", "")
    if not JOB_ID.fullmatch(instance_id):
        return instance_id, None, error_response(404, NOT_FOUND)
    try:
        status = await client.get_status(instance_id)
    except Exception:
        log.exception("could not read the status of %s", instance_id)
        return instance_id, None, error_response(503, UNAVAILABLE, {"Retry-After": "10"})
    if not status:
        return instance_id, None, error_response(404, NOT_FOUND)
    return instance_id, status, None


async def job_status(req: func.HttpRequest, client: Any, settings: Settings) -> func.HttpResponse:
    """Answer a poll: 202 while running, 200 when finished, 404 for anything unknown."""
    instance_id, status, refused = await _find(req, client)
    if refused:
        return refused
    code, view = public_status(instance_id, status)
    headers = _poll_headers(req, instance_id, settings) if code == 202 else {}
    return json_response(code, view, headers)


async def cancel_job(req: func.HttpRequest, client: Any, settings: Settings) -> func.HttpResponse:
    """DELETE: 202 while the job runs (it ends Canceled) or once it is canceled (idempotent),
    409 when it already finished otherwise, 404 for anything unknown."""
    instance_id, status, refused = await _find(req, client)
    if refused:
        return refused
    runtime = status.runtime_status.value if status.runtime_status else "Pending"
    if runtime in ("Completed", "Failed"):
        return error_response(409, ALREADY_FINISHED)
    if runtime in RUNNING_STATES:
        try:
            await client.terminate(instance_id, CANCEL_REASON)
        except Exception:
            log.exception("could not cancel %s", instance_id)
            return error_response(503, UNAVAILABLE, {"Retry-After": "10"})
    return _accepted(req, instance_id, settings)
