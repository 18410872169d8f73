"""The host's error catalogue: one constructor per wire error, rendered to HTTP in one place."""

from __future__ import annotations


class AppLoadError(Exception):
    """The app directory cannot be served; the message names the folder and the problem."""


class FunctionLoadError(RuntimeError):
    """A function whose code could not be loaded is called: it fails, as in the worker."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"Function '{name}' failed to load: {problem}")


class StoreError(Exception):
    """The state store cannot be used; the message names the file and what to do."""


class WorkerLostError(RuntimeError):
    """The worker process running a call exited: a host fault, so the call is run again (at least
    once, as in Azure), never recorded as the function's failure."""


class FunctionTimeoutError(TimeoutError):
    """A function ran longer than host.json's functionTimeout; its worker was recycled."""

    def __init__(self, name: str, timeout: float) -> None:
        hours, rest = divmod(int(timeout), 3600)
        span = f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
        super().__init__(f"Timeout value of {span} exceeded by function 'Functions.{name}'.")


class ApiError(Exception):
    """An error answer of the management API, shaped as the extension's: `Message` is its
    summary, `ExceptionMessage` the detail. The HTTP layer renders it."""

    def __init__(self, status: int, message: str = "", summary: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.summary = summary or message


def not_found() -> ApiError:
    return ApiError(404)


def gone() -> ApiError:
    """The instance has finished: the extension answers 410 with no body."""
    return ApiError(410)


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def bad_argument(message: str) -> ApiError:
    """The extension's ArgumentException answer."""
    return ApiError(400, message, "One or more of the arguments submitted is incorrect")


def invalid_operation(message: str) -> ApiError:
    """The extension's InvalidOperationException answer: a 500, with the reason."""
    return ApiError(500, message, "Something went wrong while processing your request")


def unknown_orchestrator(name: str) -> ApiError:
    return bad_argument(
        f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator function. "
        "Additional info: no such function in this app."
    )
