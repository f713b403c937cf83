"""Processes: list, detail with the parameter schema, execute (one, batch), validate."""

from __future__ import annotations

import functools
from typing import Any

from django.db import transaction
from django.urls import get_script_prefix, reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from api_app import idempotency, serializers
from api_app.callers import SCOPE_EXECUTE
from api_app.errors import error_body, field_names
from api_app.permissions import caller_of
from api_app.views.base import HeptoraAPIView
from executions import access, services
from executions.errors import InvalidParameters
from executions.models import Execution, ExecutionSource, Process
from forms_app.parameters import parameters_json_schema
from webhooks import services as webhook_services

ERRORS = {
    400: OpenApiResponse(description="Invalid body or parameters: `error.fields` lists each field's problems."),
    401: OpenApiResponse(description="Missing, invalid or expired credentials."),
    403: OpenApiResponse(description="Valid credentials without permission for this process."),
    404: OpenApiResponse(description="No such process."),
    409: OpenApiResponse(description="The process is paused, or the Idempotency-Key was used with another body."),
    429: OpenApiResponse(description="Rate limit exceeded; see Retry-After."),
}
IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
    description="Send the same key to retry safely: within 24 h the same key and body return the first "
                "execution; the same key with another body is refused with 409.",
)


def process_as_dict(request: Request, process: Process, *, detail: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "processId": process.slug, "name": process.name, "description": process.description,
        "steps": process.steps, "defaultTimeout": process.default_timeout, "paused": process.is_paused,
        "executeUrl": reverse("api:process-execute", args=[process.slug]),
    }
    if detail:
        data["parameters"] = parameters_json_schema(process)
    return data


def execution_links(execution: Execution) -> dict[str, str]:
    self_url, events_url, cancel_url = _link_templates(get_script_prefix())
    return {"self": self_url.format(execution.public_id), "events": events_url.format(execution.public_id),
            "cancel": cancel_url.format(execution.public_id)}


@functools.lru_cache(maxsize=8)
def _link_templates(script_prefix: str) -> tuple[str, str, str]:
    # Reversed once per URL prefix (three reverse() calls were a fiftieth of every execute request).
    marker = "exec-0000000000000000"
    return tuple(reverse(name, args=[marker]).replace("{", "{{").replace("}", "}}").replace(marker, "{0}")
                 for name in ("api:execution-detail", "api:execution-events", "api:execution-cancel"))


def accepted_body(execution: Execution) -> dict[str, Any]:
    return {"executionId": execution.public_id, "processId": execution.process.slug, "status": execution.status,
            "links": execution_links(execution)}


class ProcessAccessMixin:
    def allowed_process(self, request: Request, process_id: str) -> None:
        """An API key restricted to some processes may not touch the others."""
        caller = caller_of(request)
        if caller is not None and not caller.may_use_process(process_id):
            raise PermissionDenied(f"This API key may not use the process '{process_id}'.")


class ProcessListView(HeptoraAPIView):
    @extend_schema(operation_id="processes_list", responses={200: serializers.ProcessSummary(many=True)},
                   summary="Processes you may start")
    def get(self, request: Request) -> Response:
        caller = caller_of(request)
        processes = access.processes_executable_by(self.actor).order_by("slug")
        return Response([process_as_dict(request, p) for p in processes
                         if caller is None or caller.may_use_process(p.slug)])


class ProcessDetailView(ProcessAccessMixin, HeptoraAPIView):
    @extend_schema(operation_id="processes_retrieve", responses={200: serializers.ProcessDetail, **ERRORS},
                   summary="A process with the JSON Schema of its parameters")
    def get(self, request: Request, process_id: str) -> Response:
        self.allowed_process(request, process_id)
        process = services.process_resolve(process_id)
        if not access.process_can_execute(self.actor, process):
            raise PermissionDenied(f"You are not allowed to start the process '{process_id}'.")
        return Response(process_as_dict(request, process, detail=True))


class ExecuteView(ProcessAccessMixin, HeptoraAPIView):
    required_scope = SCOPE_EXECUTE

    @extend_schema(
        operation_id="processes_execute", request=serializers.ExecuteRequest, parameters=[IDEMPOTENCY_HEADER],
        responses={202: serializers.ExecuteResponse, **ERRORS}, summary="Start a process",
        description="Validates the parameters with the process's own rules, then queues an execution and "
                    "answers at once; follow it with the `self` link or a webhook.",
    )
    def post(self, request: Request, process_id: str) -> Response:
        self.allowed_process(request, process_id)
        body = _validated(serializers.ExecuteRequest, request.data, process_id)
        callback = _callback_checked(self.actor.user, body["callbackUrl"])

        def launch() -> Execution:
            return services.execution_start(
                process_id=process_id, parameters=body["parameters"], source=ExecutionSource.API,
                actor=self.actor, notify_email=body["notifyEmail"], timeout=body["timeout"],
            )

        def start() -> Execution:
            if not callback:
                return launch()  # no transaction of our own: the launch path writes in one statement
            with transaction.atomic():  # the callback exists before the execution's first event is sent
                execution = launch()
                webhook_services.callback_attach(execution=execution, owner=self.actor.user, url=callback)
            return execution

        key = request.headers.get("Idempotency-Key")
        if key:
            outcome = idempotency.execute_once(request=request, key=key, start=start, body_of=accepted_body)
            self.execution_id = outcome.execution_id
            response = Response(outcome.body, status=outcome.status)
            if outcome.replayed:
                response["Idempotent-Replayed"] = "true"
        else:
            execution = start()
            self.execution_id = execution.public_id
            response = Response(accepted_body(execution), status=status.HTTP_202_ACCEPTED)
        if response.status_code == status.HTTP_202_ACCEPTED:
            response["Location"] = response.data["links"]["self"]
        return response


class ExecuteBatchView(ProcessAccessMixin, HeptoraAPIView):
    required_scope = SCOPE_EXECUTE

    @extend_schema(
        operation_id="processes_execute_batch", request=serializers.BatchRequest,
        responses={202: serializers.BatchResponse, **ERRORS}, summary="Start many executions at once",
        description="Up to 500 items (HEPTORA_API_BATCH_MAX). Valid items are all accepted together; "
                    "each invalid item is reported with its field errors. 400 when no item is valid.",
    )
    def post(self, request: Request, process_id: str) -> Response:
        self.allowed_process(request, process_id)
        body = _validated(serializers.BatchRequest, request.data, process_id)
        callbacks = []
        for index, item in enumerate(body["items"]):
            try:
                callbacks.append(_callback_checked(self.actor.user, item["callbackUrl"]))
            except webhook_services.WebhookError as exc:
                raise ValidationError({f"items.{index}.callbackUrl": [exc.message]}) from None
        items = [services.BatchItem(parameters=i["parameters"], notify_email=i["notifyEmail"], timeout=i["timeout"])
                 for i in body["items"]]
        with transaction.atomic():
            outcomes = services.executions_start_batch(process_id=process_id, items=items,
                                                       source=ExecutionSource.API, actor=self.actor)
            for outcome, callback in zip(outcomes, callbacks, strict=True):
                if callback and isinstance(outcome, Execution):
                    webhook_services.callback_attach(execution=outcome, owner=self.actor.user, url=callback)
        results: list[dict[str, Any]] = []
        for index, outcome in enumerate(outcomes):
            if isinstance(outcome, InvalidParameters):
                error = {"code": outcome.code, "message": outcome.message, "fields": field_names(outcome)}
                results.append({"index": index, "error": error})
            else:
                results.append({"index": index, "executionId": outcome.public_id, "status": outcome.status})
        accepted = sum(1 for r in results if "executionId" in r)
        data: dict[str, Any] = {"accepted": accepted, "rejected": len(results) - accepted, "items": results}
        if not accepted:
            data.update(error_body(request, "invalid_parameters", "No item of the batch is valid; nothing started."))
            return Response(data, status=status.HTTP_400_BAD_REQUEST)
        return Response(data, status=status.HTTP_202_ACCEPTED)


class ValidateView(ProcessAccessMixin, HeptoraAPIView):
    required_scope = SCOPE_EXECUTE

    @extend_schema(
        operation_id="processes_validate", request=serializers.ExecuteRequest,
        responses={200: serializers.ValidateResponse, **ERRORS}, summary="Check parameters without starting",
        description="A dry run of execute: the same checks, nothing started. `valid` false lists the field "
                    "errors in `fields`.",
    )
    def post(self, request: Request, process_id: str) -> Response:
        self.allowed_process(request, process_id)
        body = _validated(serializers.ExecuteRequest, request.data, process_id)
        process = services.launch_check(process_id=process_id, actor=self.actor)
        try:
            plan = services.launch_plan(process=process, parameters=body["parameters"], source=ExecutionSource.API,
                                        actor=self.actor, notify_email=body["notifyEmail"], timeout=body["timeout"])
        except InvalidParameters as exc:
            return Response({"valid": False, "fields": field_names(exc)})
        try:
            _callback_checked(self.actor.user, body["callbackUrl"])
        except webhook_services.WebhookError as exc:
            return Response({"valid": False, "fields": {"callbackUrl": [exc.message]}})
        return Response({"valid": True, "parameters": plan.parameters, "requiresApproval": plan.needs_approval})


def _callback_checked(owner: Any, url: str) -> str:
    """The callbackUrl ready to attach ("" when none was given); WebhookError (400, field callbackUrl) if not."""
    return webhook_services.callback_check(owner=owner, url=url) if url else ""


def _validated(serializer_class: type, data: Any, process_id: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationError({"body": ["The body must be a JSON object."]})
    body = serializers.execute_request_plain(data) if serializer_class is serializers.ExecuteRequest else None
    if body is None:
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        body = serializer.validated_data
    given = body.get("processId")
    if given is not None and given != process_id:
        raise ValidationError({"processId": [f"Does not match the process in the URL ('{process_id}')."]})
    return body
