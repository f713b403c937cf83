"""The API call log in admin: find a support question's request by its id, an integration's recent calls."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from api_app.models import ApiCall


@admin.register(ApiCall)
class ApiCallAdmin(admin.ModelAdmin):
    list_display = ("created_at", "method", "path", "status_code", "duration_ms", "caller_label", "execution_id",
                    "request_id")
    list_filter = ("status_code", "method", "caller_kind", "created_at")
    search_fields = ("request_id", "path", "caller_label", "execution_id")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in ApiCall._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ApiCall | None = None) -> bool:
        return False
