"""Request and response shapes of the API (camelCase, as in the product's examples)."""

from __future__ import annotations

import re

from django.conf import settings
from rest_framework import serializers

from executions.models import ExecutionStatus
from webhooks.models import DeliveryStatus


class StrictSerializer(serializers.Serializer):
    """Refuses unknown fields, so a typo ("notifyEmial") is an error rather than silently ignored."""

    def to_internal_value(self, data):  # type: ignore[no-untyped-def]
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)


class ExecuteRequest(StrictSerializer):
    processId = serializers.CharField(required=False, help_text="Optional; must match the URL when given.")
    parameters = serializers.DictField(required=False, default=dict, help_text="The process's parameters.")
    notifyEmail = serializers.CharField(required=False, allow_blank=True, default="", max_length=254,
                                        help_text="Who is e-mailed the outcome.")
    timeout = serializers.IntegerField(required=False, allow_null=True, default=None,
                                       help_text="Seconds before the execution fails with 'timeout'.")
    callbackUrl = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=2000,
        help_text="Also send this execution's events to this URL, signed with your callback secret "
                  "(POST /api/v1/webhooks/callback-secret); see docs/webhooks.md.")


def execute_request_plain(data: dict) -> dict | None:
    """What :class:`ExecuteRequest` would validate ``data`` to, for the plain bodies almost every client sends;
    None for anything else, which the serializer then judges (and explains).

    Every execute call validates its body, and DRF's serializer machinery (copying the declared fields,
    running each field's validators) cost as much as a bare authenticated request. A plain body needs none
    of it: known keys only, each of exactly the type the field takes, strings without surrounding spaces.
    ``tests/api_app/test_execute_body.py`` checks that both agree on every body this accepts.
    """
    if not data.keys() <= _EXECUTE_KEYS:
        return None
    parameters = data.get("parameters", {})
    timeout = data.get("timeout")
    if type(parameters) is not dict or (timeout is not None and type(timeout) is not int):
        return None
    body = {"parameters": dict(parameters), "timeout": timeout}
    for name, longest in (("notifyEmail", 254), ("callbackUrl", 2000), ("processId", 200)):
        if name not in data:
            if name != "processId":  # processId has no default: absent stays absent
                body[name] = ""
            continue
        value = data[name]
        if type(value) is not str or value != value.strip() or len(value) > longest or _UNUSUAL.search(value):
            return None
        if not value and name == "processId":  # may not be blank
            return None
        body[name] = value
    return body


_EXECUTE_KEYS = frozenset(ExecuteRequest().fields)
_UNUSUAL = re.compile("[\x00\ud800-\udfff]")  # DRF refuses NUL and lone surrogates in text: let it say so


class Links(serializers.Serializer):
    self = serializers.CharField()
    events = serializers.CharField()
    cancel = serializers.CharField()


class ExecuteResponse(serializers.Serializer):
    executionId = serializers.CharField()
    processId = serializers.CharField()
    status = serializers.ChoiceField(choices=ExecutionStatus.choices)
    links = Links()


class BatchRequest(StrictSerializer):
    items = serializers.ListField(child=ExecuteRequest(), min_length=1,
                                  help_text="At most HEPTORA_API_BATCH_MAX items (500 unless configured).")

    def validate_items(self, items: list) -> list:  # type: ignore[type-arg]
        cap = settings.HEPTORA_API_BATCH_MAX  # read per request: operators may change it
        if len(items) > cap:
            raise serializers.ValidationError(f"Send at most {cap} items in one batch (got {len(items)}).")
        return items


class ItemError(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class BatchItemResult(serializers.Serializer):
    index = serializers.IntegerField()
    executionId = serializers.CharField(required=False)
    status = serializers.CharField(required=False)
    error = ItemError(required=False)


class BatchResponse(serializers.Serializer):
    accepted = serializers.IntegerField()
    rejected = serializers.IntegerField()
    items = BatchItemResult(many=True)


class ValidateResponse(serializers.Serializer):
    valid = serializers.BooleanField()
    parameters = serializers.DictField(required=False, help_text="The parameters as they would be stored.")
    requiresApproval = serializers.BooleanField(required=False)
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)


class ProcessSummary(serializers.Serializer):
    processId = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    steps = serializers.IntegerField()
    defaultTimeout = serializers.IntegerField()
    paused = serializers.BooleanField()
    executeUrl = serializers.CharField()


class ProcessDetail(ProcessSummary):
    parameters = serializers.DictField(help_text="JSON Schema of the parameters.")


class Progress(serializers.Serializer):
    step = serializers.IntegerField()
    totalSteps = serializers.IntegerField()
    percent = serializers.IntegerField()
    message = serializers.CharField(allow_blank=True)


class ExecutionError(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    step = serializers.IntegerField(allow_null=True)


class ExecutionDetail(serializers.Serializer):
    executionId = serializers.CharField()
    processId = serializers.CharField()
    status = serializers.ChoiceField(choices=ExecutionStatus.choices)
    source = serializers.CharField()
    startedBy = serializers.CharField()
    parameters = serializers.DictField()
    progress = Progress()
    result = serializers.JSONField(allow_null=True)
    errors = ExecutionError(many=True, allow_null=True)
    attempt = serializers.IntegerField()
    cancelRequested = serializers.BooleanField()
    createdTime = serializers.DateTimeField()
    startTime = serializers.DateTimeField(allow_null=True)
    endTime = serializers.DateTimeField(allow_null=True)
    durationSeconds = serializers.FloatField(allow_null=True)
    timeout = serializers.IntegerField()
    notifyEmail = serializers.CharField(allow_null=True)
    retryOf = serializers.CharField(allow_null=True)
    links = Links()


class ExecutionPage(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = ExecutionDetail(many=True)


class ExecutionEventOut(serializers.Serializer):
    id = serializers.IntegerField()
    time = serializers.DateTimeField()
    kind = serializers.CharField()
    level = serializers.CharField()
    message = serializers.CharField()
    data = serializers.DictField()


class DecisionRequest(StrictSerializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000,
                                    help_text="Why: kept with the vote and shown in the execution's events.")


# --- Webhooks -------------------------------------------------------------------------------------------

WEBHOOK_EVENTS = ("process.started", "process.completed", "process.failed", "process.cancelled",
                  "process.awaiting_approval", "process.rejected", "process.expired")


class WebhookCreateRequest(StrictSerializer):
    url = serializers.CharField(max_length=2000, help_text="https:// URL that receives the events.")
    events = serializers.ListField(child=serializers.ChoiceField(choices=WEBHOOK_EVENTS), min_length=1)
    processId = serializers.CharField(required=False, allow_null=True, default=None,
                                      help_text="Only this process's executions; all you may see when absent.")
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)


class WebhookUpdateRequest(StrictSerializer):
    url = serializers.CharField(required=False, max_length=2000)
    events = serializers.ListField(child=serializers.ChoiceField(choices=WEBHOOK_EVENTS), min_length=1,
                                   required=False)
    processId = serializers.CharField(required=False, allow_null=True)
    description = serializers.CharField(required=False, allow_blank=True, max_length=200)
    active = serializers.BooleanField(required=False, help_text="true enables again (and clears the failure count).")


class Webhook(serializers.Serializer):
    webhookId = serializers.CharField()
    url = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField())
    processId = serializers.CharField(allow_null=True)
    description = serializers.CharField(allow_blank=True)
    active = serializers.BooleanField()
    disabledReason = serializers.CharField(allow_null=True)
    consecutiveFailures = serializers.IntegerField()
    createdTime = serializers.DateTimeField()


class WebhookWithSecret(Webhook):
    secret = serializers.CharField(help_text="whsec_…: shown only in this response. Verify signatures with it.")


class WebhookSecret(serializers.Serializer):
    webhookId = serializers.CharField()
    secret = serializers.CharField(help_text="The new whsec_… secret, shown once. The old one keeps signing "
                                             "(as a second signature) for HEPTORA_WEBHOOK_SECRET_GRACE_HOURS.")


class CallbackSecretOut(serializers.Serializer):
    secret = serializers.CharField(help_text="whsec_…: signs every callbackUrl delivery of yours; shown once.")
    createdTime = serializers.DateTimeField()


class DeliveryAttemptOut(serializers.Serializer):
    number = serializers.IntegerField()
    time = serializers.DateTimeField()
    durationMs = serializers.IntegerField()
    url = serializers.CharField()
    requestHeaders = serializers.DictField(child=serializers.CharField())
    responseStatus = serializers.IntegerField(allow_null=True)
    responseBody = serializers.CharField(allow_blank=True, help_text="The start of the body (capped).")
    error = serializers.CharField(allow_null=True)
    succeeded = serializers.BooleanField()
    retryIn = serializers.FloatField(allow_null=True, help_text="Seconds until the next attempt.")


class Delivery(serializers.Serializer):
    deliveryId = serializers.CharField()
    eventId = serializers.CharField(help_text="The webhook-id header: the same across retries and redeliveries.")
    eventType = serializers.CharField()
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)
    attempts = serializers.IntegerField()
    nextAttemptTime = serializers.DateTimeField(allow_null=True)
    lastStatusCode = serializers.IntegerField(allow_null=True)
    lastError = serializers.CharField(allow_null=True)
    createdTime = serializers.DateTimeField()
    completedTime = serializers.DateTimeField(allow_null=True)
    redeliveryOf = serializers.CharField(allow_null=True)
    payload = serializers.DictField(help_text="The signed JSON body.")
    attemptLog = DeliveryAttemptOut(many=True)


class DeliveryPage(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = Delivery(many=True)
