"""The product's two example forms (used by ``manage.py seed_demo``, after the executions app's demo).

A form that already exists is left as it is (an admin may have changed it); its access and the demo
manager's membership of "Department Managers" are put back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from executions.models import Process
from forms_app import services
from forms_app.models import FormDefinition

DEPARTMENT_MANAGERS = "Department Managers"

ORDER_FORM: dict[str, Any] = {
    "slug": "order-processing",
    "process": "order-processing",
    "title": "Order Processing Request",
    "description": "Send an order to be validated, charged, fulfilled and confirmed.",
    "success_message": "Order received. You can follow its progress on this page.",
    "confirmation_email": False,
    "access": "authenticated",
    "fields": [
        {"name": "orderId", "label": "Order ID", "type": "text", "required": True, "min_length": 10,
         "max_length": 15, "regex": r"^ORD-", "regex_message": 'Must start with "ORD-".',
         "placeholder": "ORD-2024-001"},
        # Required for a person filling the form; the API's documented example identifies the customer by
        # customerId instead, so integrators may leave the name out.
        {"name": "customerName", "label": "Customer Name", "type": "text", "web_required": True,
         "max_length": 200},
        {"name": "priority", "label": "Priority", "type": "dropdown", "required": True,
         "choices": ["Low", "Medium", "High"]},
        {"name": "specialInstructions", "label": "Special Instructions", "type": "textarea", "max_length": 1000,
         "show_if_field": "priority", "show_if_value": "High"},
        {"name": "emailNotification", "label": "Email notification", "type": "checkbox"},
        {"name": "email", "label": "Email", "type": "email", "required": True, "profile_default": "email",
         "show_if_field": "emailNotification", "show_if_value": True,
         "help_text": "Where to send the notification."},
        # Sent by integrators (the product's API example), not shown on the web form.
        {"name": "customerId", "label": "Customer ID", "type": "text", "max_length": 50, "on_web_form": False},
        {"name": "amount", "label": "Amount", "type": "number", "min_value": 0, "decimal_places": 2, "prefix": "$",
         "on_web_form": False},
        {"name": "metadata", "label": "Metadata", "type": "object", "on_web_form": False},
    ],
}

MONTHLY_METRICS_FORM: dict[str, Any] = {
    "slug": "monthly-metrics",
    "process": "monthly-report",
    "title": "Submit Monthly Metrics",
    "description": "Provide monthly KPI data",
    "success_message": "Report submitted successfully. You will receive confirmation within 30 minutes.",
    "confirmation_email": True,
    "access": "restricted",
    "allowed_groups": [DEPARTMENT_MANAGERS],
    "fields": [
        {"name": "month", "label": "Month Selection", "type": "month", "required": True,
         "default_current_month": True},
        {"name": "revenue", "label": "Revenue", "type": "number", "required": True, "min_value": 0,
         "decimal_places": 2, "prefix": "$"},
        {"name": "department", "label": "Department", "type": "dropdown", "required": True,
         "choices": ["Sales", "Marketing", "Operations", "Finance"], "profile_default": "department"},
        {"name": "additionalNotes", "label": "Additional Notes", "type": "textarea", "max_length": 500},
        {"name": "supportingDocument", "label": "Attach supporting document", "type": "file",
         "allowed_formats": ["pdf", "excel", "word"]},
    ],
}

DEMO_FORMS = [ORDER_FORM, MONTHLY_METRICS_FORM]


def seed(write: Callable[[str], None], *, reset_passwords: bool = False) -> None:
    managers, _ = Group.objects.get_or_create(name=DEPARTMENT_MANAGERS)
    demo_manager = get_user_model().objects.filter(username="manager").first()
    if demo_manager is not None:
        demo_manager.groups.add(managers)
    for definition in DEMO_FORMS:
        form = FormDefinition.objects.filter(slug=definition["slug"]).first()
        if form is None:
            if not Process.objects.filter(slug=definition["process"]).exists():
                write(f"skipped the form {definition['slug']}: there is no process {definition['process']}")
                continue
            form = services.form_import(definition)
            write(f"created form {form.title} (/forms/{form.slug}/)")
        elif definition.get("allowed_groups"):
            groups = Group.objects.filter(name__in=definition["allowed_groups"])
            services.form_grant_access(form, groups=[*services.form_access_holders(form)[1], *groups])
