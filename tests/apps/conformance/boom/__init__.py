"""An HTTP function that raises: the caller must get a bare 500, the log the traceback."""

import azure.functions as func


def main(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("secret-detail-that-must-not-leak")
