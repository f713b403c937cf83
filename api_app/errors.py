"""One error shape for every API failure: `{"error": {"code", "message", "fields"?, "requestId"}}`.

Every exception a view can raise ends here, so a client never sees a 500 page or a traceback, and every
body names the request id that the logs and the API call log record.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from executions.errors import HeptoraError, InvalidParameters

logger = logging.getLogger(__name__)

CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


# DRF's codes where ours read better for integrators.
RENAMED_CODES = {
    "authentication_failed": "not_authenticated",
    "throttled": "rate_limited",
    "parse_error": "invalid_json",
}


def request_id_of(request: Any) -> str:
    return getattr(getattr(request, "_request", request), "request_id", "")


def error_body(request: Any, code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    error["requestId"] = request_id_of(request)
    return {"error": error}


BODY_FIELDS = {"timeout", "notifyEmail"}  # checked by the launch path, but fields of the body, not parameters


def field_names(exc: InvalidParameters) -> dict[str, list[str]]:
    """The launch path's field errors named as the body names them ("parameters.orderId", "timeout")."""
    return {(name if name in BODY_FIELDS else f"parameters.{name}"): messages
            for name, messages in exc.field_errors.items()}


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error details as {"parameters.orderId": ["…"]}."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = str(key) if key != "non_field_errors" else "body"
            out.update(_flatten(value, f"{prefix}.{name}" if prefix else name))
        return out
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return {prefix or "body": [str(item) for item in detail]}
        out = {}
        for index, item in enumerate(detail):
            out.update(_flatten(item, f"{prefix}[{index}]"))
        return out
    return {prefix or "body": [str(detail)]}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    request = context.get("request")
    if isinstance(exc, InvalidParameters):
        return Response(error_body(request, exc.code, exc.message, field_names(exc)), status=exc.http_status)
    if isinstance(exc, HeptoraError):
        field = getattr(exc, "field", None)  # an error about one input names it
        fields = {field: [exc.message]} if field else None
        return Response(error_body(request, exc.code, exc.message, fields), status=exc.http_status)
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body(request, "too_large", "The request body is too large."), status=413)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled API error (request %s)", request_id_of(request), exc_info=exc)
        return Response(
            error_body(request, "server_error", "Something went wrong on our side. Quote the request id to support."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        response.data = error_body(request, "invalid_request", "The request is not valid.", fields)
        return response
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    drf_code = getattr(detail, "code", None)
    code = RENAMED_CODES.get(drf_code, drf_code) or CODES.get(response.status_code, "error")
    message = str(detail) if not isinstance(detail, (list, dict)) else "The request was refused."
    if isinstance(exc, exceptions.ParseError):
        message = message.replace("JSON parse error - ", "The body is not valid JSON: ")
    response.data = error_body(request, code, message)
    return response
