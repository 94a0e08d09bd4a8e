"""Every response under ``/api/v1/`` and ``/triggers/`` is JSON, whatever went wrong.

DRF already answers its own errors in the one error shape (``webhookhub.web.api.errors``):
``{"detail": "...", "errors": {field: [messages]}}``. What happens outside a DRF view does not
pass through it: a path no route matches (Django's 404 page), a body over
``DATA_UPLOAD_MAX_MEMORY_SIZE`` (Django's 400 page), an unexpected exception (the 500 page, or
the debug page with DEBUG on). This middleware gives those the same JSON shape and status.
"""

import logging
from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse

logger = logging.getLogger("django.request")

API_PREFIXES = ("/api/v1/", "/triggers/")


def json_error(status: int, detail: str, errors: dict | None = None) -> JsonResponse:
    return JsonResponse({"detail": detail, "errors": errors or {}}, status=status)


class JsonErrorsMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path.startswith(API_PREFIXES) or response.status_code < 400:
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        return json_error(response.status_code, _detail(request, response.status_code))

    def process_exception(self, request, exception):
        if not request.path.startswith(API_PREFIXES) or isinstance(exception, Http404):
            return None  # a 404 page becomes JSON on the way out
        if isinstance(exception, RequestDataTooBig):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return json_error(413, f"The request body is larger than the limit of {limit} bytes.")
        logger.error("Internal Server Error: %s", request.path, exc_info=exception, extra={"status_code": 500})
        return json_error(500, "Internal server error; it has been logged.")


def _detail(request, status: int) -> str:
    if status == 404:
        return f"Not found: nothing at {request.path}."
    if status == 405:
        return f"Method {request.method} is not allowed here."
    try:
        return f"{HTTPStatus(status).phrase}."
    except ValueError:
        return f"HTTP {status}."
