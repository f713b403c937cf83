"""Executions: list, detail, events, cancel, retry — only those the caller may see."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from api_app import serializers
from api_app.callers import SCOPE_EXECUTE
from api_app.permissions import caller_of
from api_app.views.base import HeptoraAPIView
from api_app.views.processes import accepted_body, execution_links
from executions import access, selectors, services
from executions.models import Execution, ExecutionSource, ExecutionStatus

NOT_FOUND = OpenApiResponse(description="No such execution, or not one you may see.")
BAD_QUERY = OpenApiResponse(description="A query parameter is not valid: `error.fields` says which.")
NO_PAGE = OpenApiResponse(description="No such page (pages start at 1; past the last page there are none).")


class Pages(PageNumberPagination):
    page_size = 20
    page_size_query_param = "pageSize"
    max_page_size = 100


def execution_body(execution: Execution) -> dict[str, Any]:
    return {**selectors.execution_as_dict(execution), "links": execution_links(execution)}


class ExecutionAccessMixin:
    def visible(self, request: Request) -> QuerySet[Execution]:
        executions = access.executions_visible_to(self.actor).select_related("process", "retry_of")
        caller = caller_of(request)
        if caller is not None and caller.allowed_processes is not None:
            executions = executions.filter(process__slug__in=caller.allowed_processes)
        return executions

    def get_execution(self, request: Request, execution_id: str) -> Execution:
        execution = self.visible(request).filter(public_id=execution_id).first()
        if execution is None:
            raise NotFound(f"There is no execution with id '{execution_id}' that you may see.")
        self.execution_id = execution.public_id
        return execution


class ExecutionListView(ExecutionAccessMixin, HeptoraAPIView):
    @extend_schema(
        operation_id="executions_list", summary="Your executions, newest first",
        parameters=[
            OpenApiParameter("status", str, enum=ExecutionStatus.values),
            OpenApiParameter("process", str, description="A process id."),
            OpenApiParameter("since", datetime, description="ISO 8601; executions created at or after it."),
            OpenApiParameter("page", {"type": "integer", "minimum": 1}),
            OpenApiParameter("pageSize", {"type": "integer", "minimum": 1, "maximum": 100},
                             description="1 to 100, default 20"),
        ],
        responses={200: serializers.ExecutionPage, 400: BAD_QUERY, 404: NO_PAGE},
    )
    def get(self, request: Request) -> Response:
        executions = self.visible(request).order_by("-created_at", "-id")
        status_filter = request.query_params.get("status")
        if status_filter:
            if status_filter not in ExecutionStatus.values:
                raise ValidationError({"status": [f"Use one of: {', '.join(ExecutionStatus.values)}."]})
            executions = executions.filter(status=status_filter)
        if request.query_params.get("process"):
            executions = executions.filter(process__slug=request.query_params["process"])
        since = request.query_params.get("since")
        if since:
            try:
                moment = parse_datetime(since)
                if moment is not None and moment.tzinfo is not None:
                    moment = moment.astimezone(UTC)
            except (ValueError, OverflowError):
                moment = None
            if moment is None:
                raise ValidationError({"since": ["Use an ISO 8601 date-time, e.g. 2024-11-03T10:30:00Z."]})
            executions = executions.filter(created_at__gte=moment)
        paginator = Pages()
        page = paginator.paginate_queryset(executions, request, view=self)
        return paginator.get_paginated_response([execution_body(e) for e in page])


class ExecutionDetailView(ExecutionAccessMixin, HeptoraAPIView):
    @extend_schema(operation_id="executions_retrieve", summary="Status, progress, result and errors",
                   responses={200: serializers.ExecutionDetail, 404: NOT_FOUND})
    def get(self, request: Request, execution_id: str) -> Response:
        return Response(execution_body(self.get_execution(request, execution_id)))


class ExecutionEventsView(ExecutionAccessMixin, HeptoraAPIView):
    @extend_schema(
        operation_id="executions_events", summary="The execution's log: status changes, steps, log lines",
        parameters=[OpenApiParameter("after", {"type": "integer", "minimum": 0},
                                     description="Only events with a larger id (for polling).")],
        responses={200: serializers.ExecutionEventOut(many=True), 400: BAD_QUERY, 404: NOT_FOUND},
    )
    def get(self, request: Request, execution_id: str) -> Response:
        execution = self.get_execution(request, execution_id)
        after = request.query_params.get("after", "0")
        if not after.isdigit():
            raise ValidationError({"after": ["Use an event id (a whole number)."]})
        events = selectors.execution_events(execution=execution, after_id=int(after))[:1000]
        return Response([selectors.event_as_dict(e) for e in events])


class ExecutionCancelView(ExecutionAccessMixin, HeptoraAPIView):
    required_scope = SCOPE_EXECUTE

    @extend_schema(
        operation_id="executions_cancel", request=None, summary="Cancel (at once, or at the next step if running)",
        responses={202: serializers.ExecutionDetail, 404: NOT_FOUND,
                   409: OpenApiResponse(description="It has already finished.")},
    )
    def post(self, request: Request, execution_id: str) -> Response:
        execution = self.get_execution(request, execution_id)
        execution = services.execution_cancel(execution=execution, actor=self.actor)
        return Response(execution_body(execution), status=status.HTTP_202_ACCEPTED)


class ExecutionRetryView(ExecutionAccessMixin, HeptoraAPIView):
    required_scope = SCOPE_EXECUTE

    @extend_schema(
        operation_id="executions_retry", request=None, summary="Start it again as a new execution",
        responses={202: serializers.ExecuteResponse, 404: NOT_FOUND,
                   409: OpenApiResponse(description="Only failed, cancelled, expired or rejected ones.")},
    )
    def post(self, request: Request, execution_id: str) -> Response:
        original = self.get_execution(request, execution_id)
        caller = caller_of(request)
        if caller is not None and not caller.may_use_process(original.process.slug):
            raise NotFound(f"There is no execution with id '{execution_id}' that you may see.")
        execution = services.execution_retry(execution=original, actor=self.actor, source=ExecutionSource.API)
        self.execution_id = execution.public_id
        response = Response(accepted_body(execution), status=status.HTTP_202_ACCEPTED)
        response["Location"] = response.data["links"]["self"]
        return response
