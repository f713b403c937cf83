"""The product's two example forms are seeded once however often seed_demo runs, and a form travels between
installations with export_form / import_form."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command

from forms_app.models import FormDefinition, FormField
from forms_app.services import form_access_holders, form_can_use, form_export, form_web_fields


def command(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def seeded(db: None, settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    command("seed_demo")


def test_the_order_form_has_the_products_fields(seeded: None) -> None:
    form = FormDefinition.objects.get(slug="order-processing")
    fields = {f["name"]: f for f in form_web_fields(form)}

    assert (form.title, form.process.slug, form.access) == ("Order Processing Request", "order-processing",
                                                             "authenticated")
    assert [(f["label"], f["type"], f["required"]) for f in fields.values()] == [
        ("Order ID", "text", True), ("Customer Name", "text", True), ("Priority", "dropdown", True),
        ("Special Instructions", "textarea", False), ("Email notification", "checkbox", False),
        ("Email", "email", True)]
    assert fields["orderId"]["regex_message"] == 'Must start with "ORD-".'
    assert (fields["orderId"]["min_length"], fields["orderId"]["max_length"]) == (10, 15)
    assert fields["priority"]["choices"] == ["Low", "Medium", "High"]
    assert fields["specialInstructions"]["show_if"] == {"priority": "High"}
    assert fields["email"]["show_if"] == {"emailNotification": True}
    assert fields["email"]["profile_default"] == "email"
    assert set(form.fields.filter(on_web_form=False).values_list("name", flat=True)) == {
        "customerId", "amount", "metadata"}


def test_the_monthly_metrics_form_has_the_products_fields_and_access(seeded: None) -> None:
    form = FormDefinition.objects.get(slug="monthly-metrics")
    fields = form_web_fields(form)

    assert (form.title, form.description, form.process.slug) == ("Submit Monthly Metrics", "Provide monthly KPI data",
                                                                 "monthly-report")
    assert form.success_message == "Report submitted successfully. You will receive confirmation within 30 minutes."
    assert (form.confirmation_email, form.access) == (True, "restricted")
    assert [(f["label"], f["type"], f["required"]) for f in fields] == [
        ("Month Selection", "month", True), ("Revenue", "number", True), ("Department", "dropdown", True),
        ("Additional Notes", "textarea", False), ("Attach supporting document", "file", False)]
    month, revenue, department, notes, document = fields
    assert month["default_current_month"] is True
    assert (revenue["prefix"], revenue["decimal_places"]) == ("$", 2)
    assert (department["choices"], department["profile_default"]) == (
        ["Sales", "Marketing", "Operations", "Finance"], "department")
    assert notes["max_length"] == 500
    assert document["allowed_formats"] == ["pdf", "excel", "word"]
    assert form_access_holders(form)[1] == [Group.objects.get(name="Department Managers")]


def test_only_department_managers_may_submit_monthly_metrics(seeded: None) -> None:
    form = FormDefinition.objects.get(slug="monthly-metrics")
    users = {u.username: u for u in User.objects.all()}

    assert {name for name, user in users.items() if form_can_use(user, form)} == {"admin", "manager"}


def test_seeding_again_changes_nothing_and_keeps_an_admins_edits(seeded: None) -> None:
    FormDefinition.objects.filter(slug="order-processing").update(title="Orders")
    before = {f.slug: form_export(f) for f in FormDefinition.objects.all()}
    counts = (FormDefinition.objects.count(), FormField.objects.count(), Group.objects.count())

    out = command("seed_demo")

    assert "created form" not in out
    assert {f.slug: form_export(f) for f in FormDefinition.objects.all()} == before
    assert (FormDefinition.objects.count(), FormField.objects.count(), Group.objects.count()) == counts


# --- export_form / import_form --------------------------------------------------------------------------


def test_a_form_exported_to_a_file_imports_back_identically(seeded: None, tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    before = form_export(FormDefinition.objects.get(slug="monthly-metrics"))

    assert command("export_form", "monthly-metrics", "--output", str(path)) == (
        f"Wrote the form monthly-metrics to {path}.\n")
    FormDefinition.objects.get(slug="monthly-metrics").delete()
    out = command("import_form", str(path))

    assert out == "Imported the form monthly-metrics (5 fields) for the process monthly-report.\n"
    assert form_export(FormDefinition.objects.get(slug="monthly-metrics")) == before
    assert json.loads(path.read_text()) == before


def test_export_without_output_prints_the_json(seeded: None) -> None:
    assert json.loads(command("export_form", "order-processing"))["title"] == "Order Processing Request"


@pytest.mark.parametrize(("args", "message"), [
    (["export_form", "nope"], "There is no form 'nope'. Forms: monthly-metrics, order-processing."),
    (["import_form", "/no/such/file.json"], "Cannot read /no/such/file.json: No such file or directory."),
])
def test_a_command_given_something_that_does_not_exist_says_so(seeded: None, args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match="^" + message.replace(".", r"\.") + "$"):
        command(*args)


def test_importing_an_existing_form_without_replace_fails_and_changes_nothing(seeded: None, tmp_path: Path) -> None:
    path = tmp_path / "order.json"
    exported = form_export(FormDefinition.objects.get(slug="order-processing"))
    path.write_text(json.dumps({**exported, "title": "Changed"}))

    with pytest.raises(CommandError, match="A form with the slug 'order-processing' already exists"):
        command("import_form", str(path))
    assert FormDefinition.objects.get(slug="order-processing").title == "Order Processing Request"

    command("import_form", str(path), "--replace")
    assert FormDefinition.objects.get(slug="order-processing").title == "Changed"


def test_a_broken_file_is_one_clear_error(db: None, tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"slug": "x",')

    with pytest.raises(CommandError, match=r"broken.json is not valid JSON: Expecting property name"):
        command("import_form", str(path))
    assert FormDefinition.objects.count() == 0
