"""Admin for API keys: make one (its text shown once), see status and use, revoke, rotate.

The secret hash is never shown; the prefix and the history (revocation, rotation, use) are read-only.
Every change goes through :mod:`api_app.api_keys`, so web processes stop trusting their cached copy at once.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from api_app import api_keys
from api_app.api_keys import ApiKeyStatus
from api_app.models import ApiKey

SETTINGS = ("name", "expires_at", "allowed_processes", "allowed_ips", "rate_limit_per_minute")
GRACE_HOURS = api_keys.DEFAULT_GRACE / timedelta(hours=1)
HISTORY = ("created_at", "created_by", "last_used_at", "uses", "revoked_at", "revoked_reason", "replaced_by",
           "grace_until")


class LinesField(forms.CharField):
    """A list edited as one entry per line (commas work too)."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 40})

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return [item.strip() for item in text.replace(",", "\n").splitlines() if item.strip()]


class ApiKeyForm(forms.ModelForm):
    allowed_processes = LinesField(
        required=False, help_text="Process ids this key may start, one per line; empty for all the user may start."
    )
    allowed_ips = LinesField(
        required=False, help_text="Addresses or CIDR ranges (e.g. 203.0.113.0/24), one per line; empty for any."
    )

    class Meta:
        model = ApiKey
        fields = ("user", *SETTINGS)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        user = data.get("user")
        try:
            if user is not None and not user.is_active:
                raise api_keys.ApiKeyError(f"The user '{user.get_username()}' is not active.", field="user")
            data.update(api_keys.settings_clean(
                **{name: data.get(name) for name in SETTINGS},
                current_expiry=self.instance.expires_at if self.instance.pk else None,
            ))
        except api_keys.ApiKeyError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return data


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(s, s) for s in (ApiKeyStatus.ACTIVE, ApiKeyStatus.ROTATED_GRACE, ApiKeyStatus.EXPIRED,
                                 ApiKeyStatus.ROTATED, ApiKeyStatus.REVOKED)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> QuerySet[ApiKey]:
        now = timezone.now()
        revoked = Q(revoked_at__isnull=False)
        rotated = Q(replaced_by__isnull=False) & (Q(grace_until__isnull=True) | Q(grace_until__lte=now))
        expired = Q(expires_at__lte=now)
        in_grace = Q(replaced_by__isnull=False)
        match self.value():
            case ApiKeyStatus.REVOKED:
                return queryset.filter(revoked)
            case ApiKeyStatus.ROTATED:
                return queryset.filter(rotated).exclude(revoked)
            case ApiKeyStatus.EXPIRED:
                return queryset.filter(expired).exclude(revoked | rotated)
            case ApiKeyStatus.ROTATED_GRACE:
                return queryset.filter(in_grace).exclude(revoked | rotated | expired)
            case ApiKeyStatus.ACTIVE:
                return queryset.exclude(revoked | in_grace | expired)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ("prefix", "name", "user", "status", "expires_at", "last_used_at", "uses", "created_at")
    list_filter = (StatusFilter,)
    search_fields = ("prefix", "name", "user__username")
    list_select_related = ("user",)
    actions = ["revoke_keys", "rotate_keys"]

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("user", *SETTINGS)
        return ("prefix", "status", "user", *SETTINGS, *HISTORY)

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> tuple[str, ...]:
        return () if obj is None else ("prefix", "status", "user", *HISTORY)

    def has_delete_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        return False  # revoke instead: the row is the key's history

    @admin.display(description="status")
    def status(self, obj: ApiKey) -> str:
        return api_keys.api_key_status(key=obj)

    @admin.display(description="uses")
    def uses(self, obj: ApiKey) -> int:
        return api_keys.api_key_usage(key=obj)

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        settings = {name: form.cleaned_data[name] for name in SETTINGS}
        if change:
            api_keys.api_key_update(key=obj, **settings)
            return
        created, full_key = api_keys.api_key_create(user=form.cleaned_data["user"], created_by=request.user,
                                                    **settings)
        for field in ApiKey._meta.concrete_fields:  # the admin goes on with the object it was given
            setattr(obj, field.attname, getattr(created, field.attname))
        obj._state.adding, obj._state.db = False, created._state.db
        self.message_user(request, f"The new API key is {full_key} — copy it now: it will not be shown again.",
                          messages.WARNING)

    @admin.action(description="Revoke selected API keys (they stop at once)", permissions=["change"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        reason = f"revoked in the admin by {request.user.get_username()}"
        revoked = [key.prefix for key in queryset if api_keys.api_key_revoke(key=key, reason=reason)]
        if revoked:
            self.message_user(request, f"Revoked {', '.join(revoked)}.", messages.SUCCESS)
        else:
            self.message_user(request, "The selected keys were already revoked.", messages.INFO)

    @admin.action(description=f"Rotate selected API keys (old keys keep working for {GRACE_HOURS:g} hours)",
                  permissions=["change"])
    def rotate_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset:
            try:
                _new_key, full_key = api_keys.api_key_rotate(key=key, created_by=request.user)
            except api_keys.ApiKeyError as exc:
                self.message_user(request, exc.message, messages.ERROR)
                continue
            until = timezone.localtime(key.grace_until).strftime("%Y-%m-%d %H:%M %Z")
            self.message_user(
                request,
                f"{key.prefix} was rotated; the new key is {full_key} — copy it now: it will not be shown again. "
                f"{key.prefix} keeps working until {until}.",
                messages.WARNING,
            )
