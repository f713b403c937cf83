"""The form an admin builds IS the process's parameter definition: the API validates against it at once,
and reading it costs one cache GET and no query once it is cached."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from executions.models import Execution, Process
from forms_app.demo import ORDER_FORM
from forms_app.models import FormField
from forms_app.parameters import fields_for, parameters_json_schema
from forms_app.services import form_import
from tests.api_app.helpers import DOC_BODY, error_of, fields_of, post, signed_in
from tests.conftest import database_work
from tests.forms_app.conftest import FormFactory


@pytest.fixture
def order_form(db: None) -> None:
    form_import(ORDER_FORM)


def test_a_process_without_a_form_keeps_its_code_declaration(db: None) -> None:
    process = Process.objects.get(slug="data-sync")

    assert [spec["name"] for spec in fields_for(process)] == ["system", "direction", "fullSync"]


def test_a_process_with_a_form_uses_the_forms_fields_in_their_order(make_form: FormFactory) -> None:
    make_form([{"name": "b", "type": "text"}, {"name": "a", "type": "number"}])

    assert [spec["name"] for spec in fields_for(Process.objects.get(slug="test-echo"))] == ["b", "a"]


def test_once_cached_the_definition_costs_no_query(make_form: FormFactory) -> None:
    make_form([{"name": "text", "type": "text", "required": True}])
    process = Process.objects.get(slug="test-echo")
    fields_for(process)

    with CaptureQueriesContext(connection) as asked:
        assert [spec["name"] for spec in fields_for(process)] == ["text"]

    assert database_work(asked) == []


def test_the_api_example_validates_against_the_seeded_order_form(order_form: None, staff_user: User) -> None:
    response = post(signed_in(staff_user), DOC_BODY)

    assert response.status_code == 202, response.content
    execution = Execution.objects.get()
    assert execution.parameters == {"orderId": "ORD-2024-001", "priority": "High", "customerId": "CUST-5432",
                                    "amount": 1500, "metadata": {"source": "mobile-app", "region": "US-West"}}


def test_a_required_field_added_in_admin_is_required_by_the_api_at_once(
    order_form: None, staff_user: User, django_capture_on_commit_callbacks
) -> None:
    client = signed_in(staff_user)
    assert post(client, DOC_BODY).status_code == 202  # the definition is now cached

    with django_capture_on_commit_callbacks(execute=True):
        FormField.objects.create(form_id=Process.objects.get(slug="order-processing").form.pk, position=99,
                                 name="costCentre", label="Cost centre", type="text", required=True)
    response = post(client, DOC_BODY)

    assert error_of(response)[:2] == (400, "invalid_parameters")
    assert fields_of(response) == {"parameters.costCentre": ["This field is required."]}
    assert Execution.objects.count() == 1


def test_a_field_removed_in_admin_is_unknown_to_the_api_at_once(order_form: None, staff_user: User) -> None:
    client = signed_in(staff_user)
    assert post(client, DOC_BODY).status_code == 202

    FormField.objects.get(name="metadata").delete()
    response = post(client, DOC_BODY)

    assert fields_of(response)["parameters.metadata"][0].startswith("Unknown parameter. Known parameters: amount,")


def test_the_api_schema_follows_the_form(order_form: None) -> None:
    schema = parameters_json_schema(Process.objects.get(slug="order-processing"))

    assert schema["required"] == ["orderId", "priority"]  # customerName is required on the web form only
    assert list(schema["properties"]) == ["orderId", "customerName", "priority", "specialInstructions",
                                          "emailNotification", "email", "customerId", "amount", "metadata"]
    assert schema["properties"]["email"]["description"] == "Where to send the notification. Only used when " \
                                                           "emailNotification is True."


def test_after_a_change_the_definition_is_read_once_and_cached_again(
    make_form: FormFactory, django_capture_on_commit_callbacks
) -> None:
    form = make_form([{"name": "text", "type": "text"}])
    process = Process.objects.get(slug="test-echo")
    assert fields_for(process)[0]["required"] is False

    with django_capture_on_commit_callbacks(execute=True):
        field = FormField.objects.get(form=form)
        field.required = True
        field.save()
    with CaptureQueriesContext(connection) as first_read:
        assert fields_for(process)[0]["required"] is True
    with CaptureQueriesContext(connection) as second_read:
        assert fields_for(process)[0]["required"] is True

    assert (len(database_work(first_read)), len(database_work(second_read))) == (1, 0)
