"""Request and response shapes of the API (camelCase, as in the product's examples)."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from executions.models import ExecutionStatus


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
