"""Web form definitions edited in admin. A form's fields ARE its process's parameter definition.

When a process has a form with fields, :func:`forms_app.parameters.fields_for` returns the form's fields
(as the same field dicts the code declaration uses), so the browser form, the API, chat and the CLI all
validate against what the admin built. A process without a form keeps the definition declared in code.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from executions.models import Execution, Process

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,59}$")
# File formats a file field may allow, by the name admins use ("pdf", "excel", "word"); see forms_app.uploads.
FILE_FORMATS = ("pdf", "word", "excel", "csv", "image")
TEXT_TYPES = ("text", "textarea")


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
    web_required = models.BooleanField(
        "required on the web form only", default=False,
        help_text="Required when a person fills the form; the API and chat may leave it out.",
    )
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
        """Catch a definition that could never work, with a message next to the setting that is wrong."""
        errors: dict[str, list[str]] = {}

        def problem(field: str, message: str) -> None:
            errors.setdefault(field, []).append(message)

        if not NAME_RE.match(self.name or ""):
            problem("name", "Use letters, digits and _ only, starting with a letter (camelCase, e.g. orderId).")
        if self.type == FieldType.DROPDOWN:
            if not self.choices:
                problem("choices", "A dropdown needs at least one option.")
            elif not isinstance(self.choices, list) or not all(isinstance(c, str) and c.strip() for c in self.choices):
                problem("choices", 'Give the options as a JSON list of texts, e.g. ["Low", "Medium", "High"].')
            elif len({c.strip().lower() for c in self.choices}) != len(self.choices):
                problem("choices", "Each option must be different (ignoring case).")
        if self.regex:
            if self.type not in TEXT_TYPES:
                problem("regex", "A pattern applies only to text and text area fields.")
            try:
                re.compile(self.regex)
            except re.error as exc:
                problem("regex", f"This is not a valid regular expression: {exc}.")
        if self.min_length is not None and self.max_length is not None and self.min_length > self.max_length:
            problem("min_length", "The minimum length is larger than the maximum length.")
        if self.min_value is not None and self.max_value is not None and self.min_value > self.max_value:
            problem("min_value", "The minimum is larger than the maximum.")
        from forms_app import parameters  # parameters imports this module's callers, not the other way round

        unknown = [r for r in (self.rules or []) if not isinstance(r, str) or r not in parameters.registered_rules()]
        if not isinstance(self.rules, list):
            problem("rules", 'Give the rules as a JSON list of names, e.g. ["even"].')
        elif unknown:
            known = ", ".join(sorted(parameters.registered_rules())) or "none are registered"
            problem("rules", f"Unknown rule {', '.join(map(str, unknown))}. Known rules: {known}.")
        if not isinstance(self.allowed_formats, list) or any(f not in FILE_FORMATS for f in self.allowed_formats):
            problem("allowed_formats", f"Choose formats among: {', '.join(FILE_FORMATS)}.")
        if self.show_if_field:
            if self.show_if_field == self.name:
                problem("show_if_field", "A field cannot depend on itself.")
            elif self.show_if_field not in self._sibling_names():
                problem("show_if_field", f"There is no field named {self.show_if_field!r} in this form.")
            if self.show_if_value is None:
                problem("show_if_value", "Say which value of that field shows this one.")
        if self.default_current_month and self.type not in (FieldType.DATE, FieldType.MONTH):
            problem("default_current_month", "Only date and month fields can start on the current month.")
        if self.required and not self.on_web_form and self.default is None:
            problem("required", "A field left off the web form cannot be required unless it has a default.")
        if self.web_required and not self.on_web_form:
            problem("web_required", "This field is not on the web form.")
        if self.default is not None and not errors:
            problem_text = self._default_problem()
            if problem_text:
                problem("default", problem_text)
        if errors:
            raise ValidationError(errors)

    def _sibling_names(self) -> set[str]:
        """The other fields' names: those submitted with this one (admin inline, import), else the saved ones."""
        given = getattr(self, "sibling_names", None)
        if given is not None:
            return set(given) - {self.name}
        if not self.form_id:
            return set()
        return set(FormField.objects.filter(form_id=self.form_id).exclude(pk=self.pk).values_list("name", flat=True))

    def _default_problem(self) -> str:
        from forms_app import parameters

        if self.type == FieldType.FILE:
            return "A file upload cannot have a default."
        try:
            parameters.spec_field({**self.as_spec(), "required": False}).clean(self.default)
        except ValidationError as exc:
            return f"The default is not a valid value: {' '.join(exc.messages)}"
        return ""

    def as_spec(self) -> dict[str, Any]:
        """The field dict :mod:`forms_app.parameters` validates with (keys only where set)."""
        spec: dict[str, Any] = {"name": self.name, "label": self.label or self.name, "type": self.type,
                                "required": self.required}
        optional: dict[str, Any] = {
            "help": self.help_text, "placeholder": self.placeholder, "regex": self.regex,
            "regex_message": self.regex_message, "prefix": self.prefix, "rules": list(self.rules or []),
            "min_length": self.min_length, "max_length": self.max_length, "decimal_places": self.decimal_places,
            "min": _number(self.min_value), "max": _number(self.max_value),
            "profile_default": self.profile_default,
        }
        spec.update({key: value for key, value in optional.items() if value not in (None, "", [])})
        if self.type == FieldType.DROPDOWN:
            spec["choices"] = list(self.choices or [])
        if self.type == FieldType.FILE:
            spec["allowed_formats"] = list(self.allowed_formats or [])
            if self.max_file_size_mb:
                spec["max_file_size"] = self.max_file_size_mb * 1024 * 1024
        if self.default is not None:
            spec["default"] = self.default
        if self.default_current_month:
            spec["default_current_month"] = True
        if self.show_if_field:
            spec["show_if"] = {self.show_if_field: self.show_if_value}
        if self.web_required:
            spec["web_required"] = True
        if not self.on_web_form:
            spec["on_web_form"] = False
        return spec


def _number(value: Decimal | None) -> int | float | None:
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


class StaffProfile(models.Model):
    """What a form may fill in for the signed-in person beyond the user record (name and e-mail live there)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_profile")
    department = models.CharField(max_length=100, blank=True)
    phone = models.CharField(max_length=40, blank=True)

    def __str__(self) -> str:
        return f"Profile of {self.user}"


class FormSubmission(models.Model):
    """One sent form: its submission token (one per rendered form) and the execution it started.

    Written in the same transaction as the execution; the unique token makes a double click, a resubmitted
    page or two concurrent POSTs of the same form start one execution.
    """

    token = models.CharField(max_length=64, unique=True)
    form = models.ForeignKey(FormDefinition, on_delete=models.CASCADE, related_name="submissions")
    execution = models.OneToOneField(Execution, on_delete=models.CASCADE, related_name="form_submission")
    actor_ref = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.form} → {self.execution_id}"
