"""Webhooks: the caller's endpoints (CRUD, test event, secret rotation), their delivery log, redelivery,
and the callback secret that signs `callbackUrl` deliveries. A caller sees and manages only its own."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response

from api_app import serializers
from api_app.callers import SCOPE_EXECUTE, SCOPE_READ
from api_app.permissions import caller_of
from api_app.views.base import HeptoraAPIView
from api_app.views.executions import Pages
from webhooks import selectors, services
from webhooks.models import DeliveryStatus, WebhookEndpoint

NOT_FOUND = OpenApiResponse(description="No such webhook of yours.")
BAD_BODY = OpenApiResponse(description="Invalid body, or a URL that may not be called (`error.fields` says which).")
TAG = ["webhooks"]


class WebhookView(HeptoraAPIView):
    """Reads need process:read; changes need process:execute."""

    @property
    def required_scope(self) -> str:  # type: ignore[override]
        return SCOPE_READ if self.request.method in SAFE_METHODS else SCOPE_EXECUTE

    def endpoint(self, webhook_id: str) -> WebhookEndpoint:
        endpoint = selectors.endpoint_owned_by(self.request.user, webhook_id)
        if endpoint is None:
            raise NotFound(f"There is no webhook with id '{webhook_id}' of yours.")
        return endpoint

    def process_filter_allowed(self, process_id: str | None) -> None:
        """An API key limited to some processes subscribes only to those."""
        caller = caller_of(self.request)
        if caller is None or caller.allowed_processes is None:
            return
        if not process_id:
            raise PermissionDenied("This API key is limited to some processes: give a processId.")
        if not caller.may_use_process(process_id):
            raise PermissionDenied(f"This API key may not use the process '{process_id}'.")


def _body(serializer_class: type, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationError({"body": ["The body must be a JSON object."]})
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class WebhookListView(WebhookView):
    @extend_schema(operation_id="webhooks_list", tags=TAG, summary="Your webhooks",
                   responses={200: serializers.Webhook(many=True)})
    def get(self, request: Request) -> Response:
        return Response([selectors.endpoint_as_dict(e) for e in selectors.endpoints_owned_by(request.user)])

    @extend_schema(
        operation_id="webhooks_create", tags=TAG, summary="Subscribe a URL to process events",
        request=serializers.WebhookCreateRequest, responses={201: serializers.WebhookWithSecret, 400: BAD_BODY},
        description="The response carries the signing secret (`whsec_…`) once; keep it. Plain http, and URLs "
                    "that resolve to private, loopback, link-local or metadata addresses, are refused.",
    )
    def post(self, request: Request) -> Response:
        body = _body(serializers.WebhookCreateRequest, request.data)
        self.process_filter_allowed(body["processId"])
        endpoint = services.endpoint_create(
            owner=request.user, url=body["url"], events=body["events"], process_id=body["processId"],
            description=body["description"], created_by=self.actor.ref,
        )
        return Response(selectors.endpoint_as_dict(endpoint, with_secret=True), status=status.HTTP_201_CREATED)


class WebhookDetailView(WebhookView):
    @extend_schema(operation_id="webhooks_retrieve", tags=TAG, summary="One of your webhooks",
                   responses={200: serializers.Webhook, 404: NOT_FOUND})
    def get(self, request: Request, webhook_id: str) -> Response:
        return Response(selectors.endpoint_as_dict(self.endpoint(webhook_id)))

    @extend_schema(operation_id="webhooks_update", tags=TAG, summary="Change a webhook, or enable/disable it",
                   request=serializers.WebhookUpdateRequest,
                   responses={200: serializers.Webhook, 400: BAD_BODY, 404: NOT_FOUND})
    def patch(self, request: Request, webhook_id: str) -> Response:
        endpoint = self.endpoint(webhook_id)
        body = _body(serializers.WebhookUpdateRequest, request.data)
        changes: dict[str, Any] = {"url": body.get("url"), "events": body.get("events"),
                                   "description": body.get("description"), "is_active": body.get("active")}
        if "processId" in body:
            self.process_filter_allowed(body["processId"])
            changes["process_id"] = body["processId"]
        endpoint = services.endpoint_update(endpoint=endpoint, **changes)
        return Response(selectors.endpoint_as_dict(endpoint))

    @extend_schema(operation_id="webhooks_destroy", tags=TAG, summary="Delete a webhook and its delivery log",
                   responses={204: None, 404: NOT_FOUND})
    def delete(self, request: Request, webhook_id: str) -> Response:
        services.endpoint_delete(endpoint=self.endpoint(webhook_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRotateSecretView(WebhookView):
    @extend_schema(operation_id="webhooks_rotate_secret", tags=TAG, summary="Replace the signing secret",
                   request=None, responses={200: serializers.WebhookSecret, 404: NOT_FOUND})
    def post(self, request: Request, webhook_id: str) -> Response:
        endpoint = services.endpoint_rotate_secret(endpoint=self.endpoint(webhook_id))
        return Response({"webhookId": endpoint.public_id, "secret": endpoint.secret})


class WebhookTestView(WebhookView):
    @extend_schema(operation_id="webhooks_test", tags=TAG, summary="Send a test event (webhook.test)",
                   request=None, responses={202: serializers.Delivery, 404: NOT_FOUND},
                   description="Signed, retried and logged like a real event; follow it in the deliveries.")
    def post(self, request: Request, webhook_id: str) -> Response:
        delivery = services.endpoint_send_test(endpoint=self.endpoint(webhook_id))
        return Response(selectors.delivery_as_dict(delivery), status=status.HTTP_202_ACCEPTED)


class WebhookDeliveriesView(WebhookView):
    @extend_schema(
        operation_id="webhooks_deliveries", tags=TAG, summary="The webhook's deliveries and their attempts",
        parameters=[OpenApiParameter("status", str, enum=DeliveryStatus.values),
                    OpenApiParameter("page", {"type": "integer", "minimum": 1}),
                    OpenApiParameter("pageSize", {"type": "integer", "minimum": 1, "maximum": 100})],
        responses={200: serializers.DeliveryPage, 400: OpenApiResponse(description="Unknown status."),
                   404: OpenApiResponse(description="No such webhook of yours, or no such page.")},
    )
    def get(self, request: Request, webhook_id: str) -> Response:
        deliveries = selectors.deliveries_of(self.endpoint(webhook_id))
        wanted = request.query_params.get("status")
        if wanted:
            if wanted not in DeliveryStatus.values:
                raise ValidationError({"status": [f"Use one of: {', '.join(DeliveryStatus.values)}."]})
            deliveries = deliveries.filter(status=wanted)
        paginator = Pages()
        page = paginator.paginate_queryset(deliveries, request, view=self)
        return paginator.get_paginated_response([selectors.delivery_as_dict(d) for d in page])


class DeliveryRedeliverView(WebhookView):
    @extend_schema(
        operation_id="webhooks_redeliver", tags=TAG, summary="Send a delivery's event again",
        request=None, responses={
            202: serializers.Delivery, 404: OpenApiResponse(description="No such delivery of yours."),
            409: OpenApiResponse(description="Its receiver is disabled or gone."),
        },
        description="A new delivery with the same body, event id and webhook-id header (dedupe on it).",
    )
    def post(self, request: Request, delivery_id: str) -> Response:
        delivery = selectors.delivery_owned_by(request.user, delivery_id)
        if delivery is None:
            raise NotFound(f"There is no delivery with id '{delivery_id}' of yours.")
        again = services.delivery_redeliver(delivery=delivery)
        return Response(selectors.delivery_as_dict(again), status=status.HTTP_202_ACCEPTED)


class CallbackSecretView(WebhookView):
    @extend_schema(
        operation_id="webhooks_callback_secret", tags=TAG, summary="Create or replace your callback secret",
        request=None, responses={201: serializers.CallbackSecretOut, 200: serializers.CallbackSecretOut},
        description="The secret that signs deliveries to a `callbackUrl` given with execute; shown once. "
                    "201 when it is new, 200 when it replaced the previous one (which keeps signing, as a "
                    "second signature, for HEPTORA_WEBHOOK_SECRET_GRACE_HOURS).",
    )
    def post(self, request: Request) -> Response:
        holder, created = services.callback_secret_rotate(owner=request.user)
        return Response({"secret": holder.secret, "createdTime": selectors.iso(holder.rotated_at or holder.created_at)},
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
