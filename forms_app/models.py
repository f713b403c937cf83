"""Web form definitions edited in admin. A form's fields ARE its process's parameter definition.

When a process has a form with fields, :func:`forms_app.parameters.fields_for` returns the form's fields
(as the same field dicts the code declaration uses), so the browser form, the API, chat and the CLI all
validate against what the admin built. A process without a form keeps the definition declared in code.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from executions.models import Process


class FormAccess(models.TextChoices):
    PUBLIC = "public", "Anyone with the link"
    AUTHENTICATED = "authenticated", "Any signed-in user"
    RESTRICTED = "restricted", "Only the chosen roles and users"


class FormDefinition(models.Model):
    process = models.OneToOneField(Process, on_delete=models.CASCADE, related_name="form")
    slug = models.SlugField(
        unique=True, max_length=100, help_text="Its address: /forms/<slug>/ (the order form's is order-processing)."
    )
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    success_message = models.CharField(
        max_length=500, blank=True, help_text="Shown on the tracking page after the form is sent."
    )
    confirmation_email = models.BooleanField(
        default=False, help_text="E-mail the person who sent the form that it was received."
    )
    access = models.CharField(max_length=20, choices=FormAccess.choices, default=FormAccess.AUTHENTICATED)
    requires_approval = models.BooleanField(
        default=False, help_text="Executions started from this form wait for an approver's decision."
    )
    is_active = models.BooleanField("active", default=True, help_text="An inactive form is not listed or served.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]
        verbose_name = "form"
        permissions = [("use_form", "Can fill in and send the form")]

    def __str__(self) -> str:
        return self.title


class FieldType(models.TextChoices):
    TEXT = "text", "Text"
    TEXTAREA = "textarea", "Text area"
    EMAIL = "email", "E-mail"
    PHONE = "phone", "Phone"
    NUMBER = "number", "Number"
    DATE = "date", "Date"
    MONTH = "month", "Month (date picker)"
    DATETIME = "datetime", "Date and time"
    DROPDOWN = "dropdown", "Dropdown"
    CHECKBOX = "checkbox", "Checkbox"
    FILE = "file", "File upload"
    OBJECT = "object", "JSON object (API only)"
    LIST = "list", "JSON list (API only)"


class ProfileDefault(models.TextChoices):
    NONE = "", "—"
    NAME = "name", "Signed-in user's name"
    EMAIL = "email", "Signed-in user's e-mail"
    DEPARTMENT = "department", "Signed-in user's department"


class FormField(models.Model):
    """One field of a form; ``as_spec()`` is the field dict :mod:`forms_app.parameters` validates with."""

    form = models.ForeignKey(FormDefinition, on_delete=models.CASCADE, related_name="fields")
    position = models.PositiveIntegerField(default=0, db_index=True)
    name = models.CharField(
        max_length=60, help_text="The parameter's name in the API's JSON (camelCase), e.g. orderId."
    )
    label = models.CharField(max_length=200)
    type = models.CharField(max_length=20, choices=FieldType.choices, default=FieldType.TEXT)
    required = models.BooleanField(default=False)
    on_web_form = models.BooleanField(
        "shown on the web form", default=True,
        help_text="Untick for parameters only integrators send (API, chat), such as metadata.",
    )
    help_text = models.CharField(max_length=300, blank=True)
    placeholder = models.CharField(max_length=200, blank=True)
    default = models.JSONField(null=True, blank=True, help_text='A JSON value, e.g. "Medium", 10 or true.')
    default_current_month = models.BooleanField(
        default=False, help_text="Date and month fields: start on the current month."
    )
    profile_default = models.CharField(max_length=20, choices=ProfileDefault.choices, blank=True)
    choices = models.JSONField(default=list, blank=True, help_text='Dropdown options, e.g. ["Low", "Medium", "High"].')
    min_length = models.PositiveIntegerField(null=True, blank=True)
    max_length = models.PositiveIntegerField(
        null=True, blank=True, help_text="Text and text areas: the most characters allowed."
    )
    regex = models.CharField("pattern", max_length=300, blank=True, help_text="A regular expression, e.g. ^ORD-")
    regex_message = models.CharField(
        "pattern message", max_length=200, blank=True, help_text='Shown when the pattern fails: Must start with "ORD-".'
    )
    min_value = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    max_value = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    decimal_places = models.PositiveSmallIntegerField(null=True, blank=True)
    prefix = models.CharField(max_length=10, blank=True, help_text="Numbers: shown before the value, e.g. $")
    allowed_formats = models.JSONField(
        default=list, blank=True, help_text='File uploads: e.g. ["pdf", "excel", "word"]. Empty: any format.'
    )
    max_file_size_mb = models.PositiveIntegerField(null=True, blank=True, help_text="File uploads, in MB.")
    show_if_field = models.CharField(
        max_length=60, blank=True, help_text="Show (and require) this field only when that field…"
    )
    show_if_value = models.JSONField(null=True, blank=True, help_text='…has this value, e.g. "High" or true.')
    rules = models.JSONField(default=list, blank=True, help_text="Names of custom rules registered in code.")

    class Meta:
        ordering = ["position", "pk"]
        constraints = [models.UniqueConstraint(fields=["form", "name"], name="form_field_name_unique")]

    def __str__(self) -> str:
        return f"{self.label} ({self.name})"

    def clean(self) -> None:
        if self.type == FieldType.DROPDOWN and not self.choices:
            raise ValidationError({"choices": "A dropdown needs at least one option."})

    def as_spec(self) -> dict[str, Any]:
        raise NotImplementedError  # filled in by the forms issue's backend work


class StaffProfile(models.Model):
    """What a form may fill in for the signed-in person beyond the user record (name and e-mail live there)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_profile")
    department = models.CharField(max_length=100, blank=True)
    phone = models.CharField(max_length=40, blank=True)

    def __str__(self) -> str:
        return f"Profile of {self.user}"
