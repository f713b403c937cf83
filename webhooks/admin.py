"""Admin: webhook endpoints (secret shown once, test, rotate, enable), the delivery log, redelivery."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from webhooks import services
from webhooks.models import Delivery, DeliveryAttempt, ExecutionCallback, WebhookEndpoint


class EndpointForm(forms.ModelForm):
    events = forms.MultipleChoiceField(choices=[(e, e) for e in services.PUBLIC_EVENTS],
                                       widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = WebhookEndpoint
        fields = ("owner", "url", "events", "process", "description", "is_active")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        try:
            if data.get("url"):
                data["url"] = services.url_check(data["url"])
            if data.get("events"):
                data["events"] = services.events_check(list(data["events"]))
        except services.WebhookError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return data


class DeliveryInline(admin.TabularInline):
    model = Delivery
    fk_name = "endpoint"
    fields = ("public_id", "event_type", "event_id", "status", "attempts", "last_status_code", "last_error",
              "created_at")
    readonly_fields = fields
    extra = 0
    max_num = 0
    show_change_link = True
    can_delete = False
    verbose_name_plural = "deliveries (newest first)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        return super().get_queryset(request).order_by("-created_at", "-id")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = EndpointForm
    list_display = ("public_id", "url", "owner", "event_list", "process", "is_active", "consecutive_failures",
                    "created_at")
    list_filter = ("is_active", "process")
    search_fields = ("public_id", "url", "owner__username", "description")
    readonly_fields = ("public_id", "created_by", "disabled_at", "disabled_reason", "consecutive_failures",
                       "created_at", "updated_at")
    inlines = [DeliveryInline]
    actions = ["send_test", "rotate_secret", "enable"]

    @admin.display(description="events")
    def event_list(self, obj: WebhookEndpoint) -> str:
        return ", ".join(obj.events)

    def save_model(self, request: HttpRequest, obj: WebhookEndpoint, form: forms.ModelForm, change: bool) -> None:
        if not change:
            obj.created_by = f"admin:{request.user.get_username()}"
        super().save_model(request, obj, form, change)
        if not change:
            messages.warning(request, f"Signing secret of {obj.public_id} (shown only now): {obj.secret}")

    @admin.action(description="Send a test event")
    def send_test(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            delivery = services.endpoint_send_test(endpoint=endpoint)
            messages.info(request, f"Test event {delivery.event_id} queued for {endpoint.url}.")

    @admin.action(description="Rotate the signing secret (shown once)")
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            endpoint = services.endpoint_rotate_secret(endpoint=endpoint)
            messages.warning(request, f"New signing secret of {endpoint.public_id} (shown only now): {endpoint.secret}")

    @admin.action(description="Enable (and clear the failure count)")
    def enable(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            services.endpoint_update(endpoint=endpoint, is_active=True)
        messages.info(request, f"{queryset.count()} webhook(s) enabled.")


class AttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ("number", "started_at", "duration_ms", "address", "response_status", "error", "retry_in",
              "request_headers", "response_body")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("public_id", "event_type", "receiver", "status", "attempts", "last_status_code", "created_at")
    list_filter = ("status", "event_type")
    search_fields = ("public_id", "event_id", "endpoint__public_id", "endpoint__url", "execution__public_id")
    readonly_fields = [f.name for f in Delivery._meta.fields]
    inlines = [AttemptInline]
    actions = ["redeliver"]

    @admin.display(description="receiver")
    def receiver(self, obj: Delivery) -> str:
        return obj.url

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Delivery | None = None) -> bool:
        return False

    @admin.action(description="Redeliver (same event id and webhook-id)", permissions=["view"])
    def redeliver(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        done = 0
        for delivery in queryset.select_related("endpoint", "callback"):
            try:
                services.delivery_redeliver(delivery=delivery)
                done += 1
            except services.WebhookError as exc:
                messages.error(request, f"{delivery.public_id}: {exc.message}")
        if done:
            messages.info(request, f"{done} deliver{'y' if done == 1 else 'ies'} queued again.")


@admin.register(ExecutionCallback)
class ExecutionCallbackAdmin(admin.ModelAdmin):
    list_display = ("execution", "url", "owner", "is_active", "created_at")
    list_filter = ("is_active",)
    readonly_fields = ("execution", "owner", "url", "created_at", "disabled_reason")
    search_fields = ("execution__public_id", "url")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
