"""An admin builds a form's fields; the API, chat and the web form then validate with exactly those rules.

Every field type and rule is defined here as an admin would define it (FormField rows on a form for the
test-echo process) and checked through the one parameter definition, parameters_clean.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from executions.errors import InvalidParameters
from executions.models import Process
from forms_app import parameters
from forms_app.models import FormDefinition, FormField
from forms_app.parameters import parameters_clean, rule
from tests.forms_app.conftest import FormFactory


def clean(values: dict[str, Any], *, source: str = "api") -> dict[str, Any]:
    return parameters_clean(Process.objects.get(slug="test-echo"), values, source=source)


def errors(values: dict[str, Any], *, source: str = "api") -> dict[str, list[str]]:
    with pytest.raises(InvalidParameters) as caught:
        clean(values, source=source)
    return caught.value.field_errors


@pytest.fixture
def even_rule() -> Iterator[None]:
    @rule("even")
    def even(value: Any) -> None:
        if value % 2:
            raise ValidationError("Enter an even number.")

    yield
    parameters._rules.pop("even")


# --- Each type, as the admin defines it -----------------------------------------------------------------


def test_a_text_field_with_a_pattern_and_a_length_checks_all_three(make_form: FormFactory) -> None:
    make_form([{"name": "orderId", "type": "text", "required": True, "min_length": 10, "max_length": 15,
                "regex": "^ORD-", "regex_message": 'Must start with "ORD-".'}])

    assert clean({"orderId": "ORD-2024-001"}) == {"orderId": "ORD-2024-001"}
    assert errors({"orderId": "ORD-1"}) == {"orderId": ["Ensure this value has at least 10 characters (it has 5)."]}
    assert errors({"orderId": "XYZ-2024-001"}) == {"orderId": ['Must start with "ORD-".']}
    assert errors({}) == {"orderId": ["This field is required."]}


def test_a_textarea_keeps_to_its_maximum_characters(make_form: FormFactory) -> None:
    make_form([{"name": "notes", "type": "textarea", "max_length": 500}])

    assert clean({"notes": "x" * 500}) == {"notes": "x" * 500}
    assert errors({"notes": "x" * 501}) == {"notes": ["Ensure this value has at most 500 characters (it has 501)."]}


def test_an_email_and_a_phone_field_check_their_format(make_form: FormFactory) -> None:
    make_form([{"name": "contact", "type": "email"}, {"name": "phone", "type": "phone"}])

    assert clean({"contact": "ops@example.com", "phone": "+1 555 0100"}) == {
        "contact": "ops@example.com", "phone": "+1 555 0100"}
    assert errors({"contact": "ops(at)example", "phone": "call me"}) == {
        "contact": ["Enter a valid email address."], "phone": ["Enter a phone number, for example +1 555 0100."]}


def test_a_number_field_keeps_its_range_and_decimal_places(make_form: FormFactory) -> None:
    make_form([{"name": "revenue", "type": "number", "min_value": Decimal(0), "max_value": Decimal("1000000"),
                "decimal_places": 2, "prefix": "$"}])

    assert clean({"revenue": "125000.50"}) == {"revenue": 125000.5}
    assert errors({"revenue": "-1"}) == {"revenue": ["Ensure this value is greater than or equal to 0."]}
    assert errors({"revenue": "2000000"}) == {"revenue": ["Ensure this value is less than or equal to 1000000."]}
    assert errors({"revenue": "1.234"}) == {"revenue": ["Ensure that there are no more than 2 decimal places."]}


def test_date_month_and_date_time_fields_store_iso_text(make_form: FormFactory) -> None:
    make_form([{"name": "day", "type": "date"}, {"name": "month", "type": "month"},
               {"name": "at", "type": "datetime"}])

    assert clean({"day": "2024-11-03", "month": "2024-11-15", "at": "2024-11-03T12:30:00+02:00"}) == {
        "day": "2024-11-03", "month": "2024-11", "at": "2024-11-03T10:30:00Z"}
    assert errors({"day": "03/11/2024", "month": "2024-13"}) == {
        "day": ["Enter a valid date."], "month": ["Enter a month as YYYY-MM, for example 2024-11."]}


def test_a_dropdown_accepts_only_its_options_in_any_case(make_form: FormFactory) -> None:
    make_form([{"name": "priority", "type": "dropdown", "required": True, "choices": ["Low", "Medium", "High"]}])

    assert clean({"priority": "high"}) == {"priority": "High"}
    assert errors({"priority": "urgent"}) == {
        "priority": ["Select a valid choice. urgent is not one of the available choices."]}


def test_a_checkbox_is_a_boolean_whatever_the_door_sends(make_form: FormFactory) -> None:
    make_form([{"name": "notify", "type": "checkbox"}])

    assert clean({"notify": "on"}) == {"notify": True}
    assert clean({"notify": False}) == {"notify": False}
    assert errors({"notify": "perhaps"}) == {"notify": ["Answer yes or no (true or false)."]}


def test_object_and_list_fields_take_json(make_form: FormFactory) -> None:
    make_form([{"name": "metadata", "type": "object", "on_web_form": False},
               {"name": "tags", "type": "list", "on_web_form": False}])

    assert clean({"metadata": {"source": "mobile-app"}, "tags": ["a"]}) == {
        "metadata": {"source": "mobile-app"}, "tags": ["a"]}
    assert errors({"metadata": ["not", "an", "object"]}) == {"metadata": ["Enter an object, not a list."]}


def test_a_default_fills_a_value_left_out(make_form: FormFactory) -> None:
    make_form([{"name": "direction", "type": "dropdown", "choices": ["Pull", "Push"], "default": "Push"}])

    assert clean({}) == {"direction": "Push"}


def test_a_custom_rule_registered_in_code_is_applied_by_name(make_form: FormFactory, even_rule: None) -> None:
    make_form([{"name": "quantity", "type": "number", "rules": ["even"]}])

    assert clean({"quantity": 4}) == {"quantity": 4}
    assert errors({"quantity": 3}) == {"quantity": ["Enter an even number."]}


def test_a_rule_removed_from_the_code_refuses_values_instead_of_crashing(make_form: FormFactory) -> None:
    form = make_form([{"name": "quantity", "type": "number"}])
    FormField.objects.filter(form=form).update(rules=["gone"])  # as if the rule's code had been deleted
    parameters.fields_cache_clear()

    assert errors({"quantity": 4}) == {
        "quantity": ["This field's rule 'gone' is not available; ask an administrator to fix the form."]}


# --- Conditional fields ---------------------------------------------------------------------------------


@pytest.fixture
def order_like(make_form: FormFactory) -> FormDefinition:
    return make_form([
        {"name": "priority", "type": "dropdown", "required": True, "choices": ["Low", "Medium", "High"]},
        {"name": "specialInstructions", "type": "textarea", "max_length": 10,
         "show_if_field": "priority", "show_if_value": "High"},
        {"name": "emailNotification", "type": "checkbox"},
        {"name": "email", "type": "email", "required": True, "show_if_field": "emailNotification",
         "show_if_value": True},
    ])


def test_a_conditional_field_is_kept_and_checked_while_its_condition_holds(order_like: FormDefinition) -> None:
    assert clean({"priority": "high", "specialInstructions": "Back door"}) == {
        "priority": "High", "specialInstructions": "Back door"}
    assert errors({"priority": "High", "specialInstructions": "x" * 11}) == {
        "specialInstructions": ["Ensure this value has at most 10 characters (it has 11)."]}


def test_a_hidden_field_is_neither_checked_nor_kept(order_like: FormDefinition) -> None:
    assert clean({"priority": "Low", "specialInstructions": "x" * 50}) == {"priority": "Low"}


def test_a_required_field_is_required_only_while_it_is_shown(order_like: FormDefinition) -> None:
    assert clean({"priority": "Low", "emailNotification": "off"}) == {"priority": "Low", "emailNotification": False}
    assert errors({"priority": "Low", "emailNotification": "on"}) == {"email": ["This field is required."]}


def test_a_field_required_on_the_web_form_only_may_be_left_out_by_the_api(make_form: FormFactory) -> None:
    make_form([{"name": "text", "type": "text", "required": True},
               {"name": "customerName", "type": "text", "web_required": True}])

    assert clean({"text": "hi"}, source="api") == {"text": "hi"}
    assert errors({"text": "hi"}, source="form") == {"customerName": ["This field is required."]}


# --- What a field dict looks like -----------------------------------------------------------------------


def test_a_field_becomes_the_field_dict_every_door_validates_with(make_form: FormFactory) -> None:
    form = make_form([
        {"name": "priority", "type": "dropdown", "choices": ["Low", "High"], "required": True},
        {"name": "revenue", "label": "Revenue", "type": "number", "min_value": Decimal("0"),
         "max_value": Decimal("99.5"), "decimal_places": 2, "prefix": "$", "help_text": "Before tax",
         "show_if_field": "priority", "show_if_value": "High"},
        {"name": "document", "type": "file", "allowed_formats": ["pdf", "word"], "max_file_size_mb": 2},
        {"name": "month", "type": "month", "default_current_month": True},
        {"name": "metadata", "type": "object", "on_web_form": False},
    ])
    priority, revenue, document, month, metadata = (f.as_spec() for f in form.fields.all())

    assert priority == {"name": "priority", "label": "priority", "type": "dropdown", "required": True,
                        "choices": ["Low", "High"]}
    assert revenue == {"name": "revenue", "label": "Revenue", "type": "number", "required": False, "min": 0,
                       "max": 99.5, "decimal_places": 2, "prefix": "$", "help": "Before tax",
                       "show_if": {"priority": "High"}}
    assert document == {"name": "document", "label": "document", "type": "file", "required": False,
                        "allowed_formats": ["pdf", "word"], "max_file_size": 2 * 1024 * 1024}
    assert month == {"name": "month", "label": "month", "type": "month", "required": False,
                     "default_current_month": True}
    assert metadata == {"name": "metadata", "label": "metadata", "type": "object", "required": False,
                        "on_web_form": False}


# --- Definitions that could never work are refused ------------------------------------------------------


@pytest.fixture
def form(make_form: FormFactory) -> FormDefinition:
    return make_form([{"name": "priority", "type": "dropdown", "choices": ["Low", "High"]}])


def problems(form: FormDefinition, **values: Any) -> dict[str, list[str]]:
    field = FormField(form=form, label="Field", **{"name": "field", **values})
    with pytest.raises(ValidationError) as caught:
        field.full_clean()
    return caught.value.message_dict


@pytest.mark.parametrize(("values", "expected"), [
    ({"name": "order id"}, {"name": ["Use letters, digits and _ only, starting with a letter (camelCase, e.g. "
                                     "orderId)."]}),
    ({"type": "dropdown"}, {"choices": ["A dropdown needs at least one option."]}),
    ({"type": "dropdown", "choices": ["Low", "low"]}, {"choices": ["Each option must be different (ignoring case)."]}),
    ({"regex": "^ORD-("}, {"regex": ["This is not a valid regular expression: missing ), unterminated subpattern "
                                     "at position 5."]}),
    ({"type": "number", "regex": "^1"}, {"regex": ["A pattern applies only to text and text area fields."]}),
    ({"min_length": 10, "max_length": 5}, {"min_length": ["The minimum length is larger than the maximum length."]}),
    ({"type": "number", "min_value": 10, "max_value": 1}, {"min_value": ["The minimum is larger than the maximum."]}),
    ({"rules": ["no-such-rule"]}, {"rules": ["Unknown rule no-such-rule. Known rules: none are registered."]}),
    ({"show_if_field": "nowhere", "show_if_value": "x"}, {"show_if_field": [
        "There is no field named 'nowhere' in this form."]}),
    ({"show_if_field": "priority"}, {"show_if_value": ["Say which value of that field shows this one."]}),
    ({"show_if_field": "field", "show_if_value": 1}, {"show_if_field": ["A field cannot depend on itself."]}),
    ({"type": "file", "allowed_formats": ["exe"]}, {"allowed_formats": [
        "Choose formats among: pdf, word, excel, csv, image."]}),
    ({"default_current_month": True}, {"default_current_month": [
        "Only date and month fields can start on the current month."]}),
    ({"required": True, "on_web_form": False}, {"required": [
        "A field left off the web form cannot be required unless it has a default."]}),
    ({"type": "dropdown", "choices": ["A", "B"], "default": "C"}, {"default": [
        "The default is not a valid value: Select a valid choice. C is not one of the available choices."]}),
])
def test_a_definition_that_cannot_work_is_refused_with_a_clear_message(
    form: FormDefinition, values: dict[str, Any], expected: dict[str, list[str]]
) -> None:
    assert problems(form, **values) == expected


def test_a_condition_on_a_field_of_the_same_form_is_accepted(form: FormDefinition) -> None:
    field = FormField(form=form, name="notes", label="Notes", type="textarea", show_if_field="priority",
                      show_if_value="High")

    field.full_clean()
