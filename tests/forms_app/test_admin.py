"""An admin builds a form: fields ordered by drag and drop, who may use it, a preview, JSON export and
import (an import with a mistake writes nothing), and a staff member's department on their user page."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from forms_app.demo import MONTHLY_METRICS_FORM, ORDER_FORM
from forms_app.models import FormDefinition, FormField, StaffProfile
from forms_app.services import form_access_holders, form_export, form_import

FORMS = "/admin/forms_app/formdefinition/"


@pytest.fixture
def as_admin(admin_user: User) -> Client:
    client = Client(HTTP_HOST="localhost")
    client.force_login(admin_user)
    return client


@pytest.fixture
def metrics(db: None) -> FormDefinition:
    return form_import(MONTHLY_METRICS_FORM)


def inline_data(form: FormDefinition, fields: list[dict[str, Any]], **form_values: Any) -> dict[str, Any]:
    """What the change page posts: the form's settings and its fields inline, in the order given."""
    data: dict[str, Any] = {
        "process": form.process_id, "title": form.title, "slug": form.slug, "description": form.description,
        "success_message": form.success_message, "access": form.access, "is_active": "on",
        "fields-TOTAL_FORMS": len(fields), "fields-INITIAL_FORMS": sum(1 for f in fields if f.get("id")),
        "fields-MIN_NUM_FORMS": 0, "fields-MAX_NUM_FORMS": 1000, **form_values,
    }
    for i, field in enumerate(fields):
        values = {"form": form.pk, "label": field["name"], "type": "text", "choices": "[]", "rules": "[]",
                  "allowed_formats": "[]", "default": "null", "show_if_value": "null", "on_web_form": "on",
                  "position": i + 1, **field}
        data.update({f"fields-{i}-{key}": value for key, value in values.items()})
    return data


def test_the_change_page_lists_the_fields_in_a_sortable_inline(as_admin: Client, metrics: FormDefinition) -> None:
    page = as_admin.get(f"{FORMS}{metrics.pk}/change/")

    assert page.status_code == 200
    assert '<fieldset class="module sortable" aria-labelledby="fields-heading">' in page.text
    assert "adminsortable2/js/adminsortable2" in page.text
    assert page.text.index('value="month"') < page.text.index('value="revenue"')
    assert "Roles (groups) that may use it" in page.text


def test_dragging_a_field_to_the_top_saves_the_new_order(as_admin: Client, metrics: FormDefinition) -> None:
    fields = [{"id": f.pk, "name": f.name, "label": f.label, "type": f.type,
               "choices": json.dumps(f.choices), "allowed_formats": json.dumps(f.allowed_formats)}
              for f in metrics.fields.all()]
    fields.insert(0, fields.pop(2))  # Department first
    groups = [g.pk for g in Group.objects.filter(name="Department Managers")]

    response = as_admin.post(f"{FORMS}{metrics.pk}/change/",
                             inline_data(metrics, fields, access="restricted", allowed_groups=groups))

    assert response.status_code == 302, response.context["errors"] if response.context else response
    assert list(metrics.fields.values_list("name", flat=True)) == [
        "department", "month", "revenue", "additionalNotes", "supportingDocument"]


def test_a_condition_on_a_field_added_in_the_same_save_is_accepted(as_admin: Client, metrics: FormDefinition) -> None:
    FormField.objects.filter(form=metrics).delete()
    fields = [{"name": "notes", "type": "textarea", "show_if_field": "urgent", "show_if_value": "true"},
              {"name": "urgent", "type": "checkbox"}]

    response = as_admin.post(f"{FORMS}{metrics.pk}/change/", inline_data(metrics, fields))

    assert response.status_code == 302
    assert FormField.objects.get(name="notes").as_spec()["show_if"] == {"urgent": True}


def test_a_bad_field_is_shown_next_to_its_setting_and_nothing_is_saved(as_admin: Client,
                                                                        metrics: FormDefinition) -> None:
    FormField.objects.filter(form=metrics).delete()
    fields = [{"name": "orderId", "regex": "^ORD-("}, {"name": "notes", "show_if_field": "nowhere",
                                                      "show_if_value": '"x"'}]

    response = as_admin.post(f"{FORMS}{metrics.pk}/change/", inline_data(metrics, fields))

    assert response.status_code == 200
    assert "This is not a valid regular expression: missing ), unterminated subpattern at position 5." in response.text
    assert "There is no field named &#x27;nowhere&#x27; in this form." in response.text
    assert FormField.objects.filter(form=metrics).count() == 0


def test_the_roles_and_users_chosen_in_admin_are_who_may_use_the_form(
    as_admin: Client, metrics: FormDefinition, outsider: User, managers: Group
) -> None:
    fields = [{"id": f.pk, "name": f.name, "type": f.type, "choices": json.dumps(f.choices),
               "allowed_formats": json.dumps(f.allowed_formats)} for f in metrics.fields.all()]

    response = as_admin.post(f"{FORMS}{metrics.pk}/change/", inline_data(
        metrics, fields, access="restricted", allowed_groups=[managers.pk], allowed_users=[outsider.pk]))

    assert response.status_code == 302
    assert form_access_holders(metrics) == ([outsider], [managers])


def test_the_preview_shows_the_form_as_staff_see_it_but_disabled(as_admin: Client, metrics: FormDefinition) -> None:
    page = as_admin.get(f"{FORMS}{metrics.pk}/preview/")

    assert page.status_code == 200
    assert "Submit Monthly Metrics" in page.text and "Provide monthly KPI data" in page.text
    assert "<fieldset class=\"module aligned\" disabled>" in page.text
    assert '<label for="preview-month" class="required">Month Selection</label>' in page.text
    assert '<span class="prefix">$</span>' in page.text
    assert "Allowed formats: pdf, excel, word." in page.text
    assert "Report submitted successfully. You will receive confirmation within 30 minutes." in page.text


def test_export_downloads_the_definition_and_import_brings_it_back(as_admin: Client,
                                                                   metrics: FormDefinition) -> None:
    exported = as_admin.get(f"{FORMS}{metrics.pk}/export/")
    assert exported["Content-Disposition"] == 'attachment; filename="form-monthly-metrics.json"'
    before = form_export(metrics)
    metrics.delete()

    response = as_admin.post(f"{FORMS}import/", {"file": SimpleUploadedFile("f.json", exported.content)})

    assert response.status_code == 302
    assert form_export(FormDefinition.objects.get(slug="monthly-metrics")) == before


def test_the_export_action_downloads_one_form(as_admin: Client, metrics: FormDefinition) -> None:
    response = as_admin.post(FORMS, {"action": "export_json", "_selected_action": [metrics.pk]})

    assert json.loads(response.content)["slug"] == "monthly-metrics"


@pytest.mark.parametrize(("content", "message"), [
    (b"{not json", "The file is not valid JSON: Expecting property name enclosed in double quotes (line 1)."),
    (json.dumps({**ORDER_FORM, "process": "no-such-process"}).encode(),
     "There is no process &#x27;no-such-process&#x27;."),
    (json.dumps({**ORDER_FORM, "fields": [*ORDER_FORM["fields"], {"name": "x", "type": "dropdown"}]}).encode(),
     "In field 10 (x): choices: A dropdown needs at least one option."),
    (json.dumps({**ORDER_FORM, "allowed_users": ["nobody"]}).encode(), "There is no user named &#x27;nobody&#x27;."),
])
def test_a_bad_import_says_why_and_writes_nothing(as_admin: Client, content: bytes, message: str) -> None:
    response = as_admin.post(f"{FORMS}import/", {"file": SimpleUploadedFile("f.json", content)})

    assert response.status_code == 200
    assert "The form was not imported; nothing was changed." in response.text
    assert message in response.text
    assert (FormDefinition.objects.count(), FormField.objects.count()) == (0, 0)


def test_importing_over_an_existing_form_needs_replace(metrics: FormDefinition) -> None:
    changed = {**form_export(metrics), "title": "Monthly KPIs", "fields": form_export(metrics)["fields"][:2]}

    with pytest.raises(ValueError, match="A form with the slug 'monthly-metrics' already exists"):
        form_import(changed)
    form_import(changed, replace=True)

    metrics.refresh_from_db()
    assert (metrics.title, list(metrics.fields.values_list("name", flat=True))) == ("Monthly KPIs",
                                                                                    ["month", "revenue"])


def test_a_staff_members_department_is_set_on_their_user_page(as_admin: Client, staff_user: User) -> None:
    page = as_admin.get(f"/admin/auth/user/{staff_user.pk}/change/")
    assert 'name="staff_profile-0-department"' in page.text
    data = {key: value for key, value in page.context["adminform"].form.initial.items() if value is not None}
    data.update({
        "username": staff_user.username, "email": staff_user.email, "date_joined_0": "2024-11-01",
        "date_joined_1": "10:00:00", "is_active": "on", "groups": [g.pk for g in staff_user.groups.all()],
        "staff_profile-TOTAL_FORMS": 1, "staff_profile-INITIAL_FORMS": 0, "staff_profile-MIN_NUM_FORMS": 0,
        "staff_profile-MAX_NUM_FORMS": 1, "staff_profile-0-department": "Operations",
        "staff_profile-0-phone": "+1 555 0100",
    })
    data.pop("user_permissions", None)
    data.pop("last_login", None)
    data.pop("password", None)

    response = as_admin.post(f"/admin/auth/user/{staff_user.pk}/change/", data)

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    profile = StaffProfile.objects.get(user=staff_user)
    assert (profile.department, profile.phone) == ("Operations", "+1 555 0100")
