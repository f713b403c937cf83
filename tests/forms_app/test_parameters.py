"""A process's parameter definition: the one set of field rules every door (form, API, chat, CLI) applies.

The demo processes' real definitions are used through their Process rows; field types no demo process
declares (email, phone, list, custom rules) are checked on a small test-only process registered per test.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from executions import registry
from executions.errors import InvalidParameters
from executions.models import Process
from forms_app import parameters
from forms_app.parameters import parameters_clean, rule

MONTH_MESSAGE = "Enter a month as YYYY-MM, for example 2024-11."
FILE_MESSAGE = 'Give a file as an https URL or as {"name", "contentBase64"}.'
ORDER = {"orderId": "ORD-2024-001", "priority": "High"}


@pytest.fixture
def process(db: None) -> Callable[[str], Process]:
    return lambda slug: Process.objects.get(slug=slug)


@pytest.fixture
def even_rule() -> Iterator[None]:
    @rule("even")
    def even(value: Any) -> None:
        if value % 2:
            raise ValidationError("Enter an even number.")

    yield
    parameters._rules.pop("even")


@pytest.fixture
def contact_form(even_rule: None) -> Iterator[Process]:
    """A test-only process with the field types the demo processes do not use."""
    fields = [
        {"name": "nickname", "type": "text", "min_length": 3, "max_length": 8, "regex": r"^[a-z]+$"},
        {"name": "contactEmail", "type": "email", "required": True},
        {"name": "phone", "type": "phone"},
        {"name": "tags", "type": "list"},
        {"name": "quantity", "type": "number", "min": 1, "max": 10, "rules": ["even"]},
    ]
    registry.process("test-contact-form", name="Contact form", parameters=fields)(lambda ctx, params: None)
    yield Process(slug="test-contact-form", name="Contact form", default_timeout=60)
    registry._processes.pop("test-contact-form")


def errors_of(process: Process, values: dict[str, Any]) -> dict[str, list[str]]:
    with pytest.raises(InvalidParameters) as caught:
        parameters_clean(process, values)
    return caught.value.field_errors


# --- Text -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("order_id", "message"), [
    ("ORD-1", "Ensure this value has at least 10 characters (it has 5)."),
    ("ORD-2024-0000001", "Ensure this value has at most 15 characters (it has 16)."),
    ("XYZ-2024-001", 'Must start with "ORD-".'),
    ("", "This field is required."),
])
def test_an_order_id_must_start_with_ord_and_be_10_to_15_characters(
    process: Callable[[str], Process], order_id: str, message: str
) -> None:
    assert errors_of(process("order-processing"), {**ORDER, "orderId": order_id}) == {"orderId": [message]}


def test_an_order_id_is_stored_without_surrounding_spaces(process: Callable[[str], Process]) -> None:
    cleaned = parameters_clean(process("order-processing"), {**ORDER, "orderId": "  ORD-2024-001 "})

    assert cleaned == {"orderId": "ORD-2024-001", "priority": "High"}


def test_a_text_field_reports_every_rule_it_breaks(contact_form: Process) -> None:
    errors = errors_of(contact_form, {"contactEmail": "ops@example.com", "nickname": "Al"})

    assert errors == {"nickname": ["Ensure this value has at least 3 characters (it has 2).", "Enter a valid value."]}


def test_an_optional_field_left_empty_is_left_out(process: Callable[[str], Process]) -> None:
    cleaned = parameters_clean(process("order-processing"), {**ORDER, "customerName": "", "customerId": None})

    assert cleaned == ORDER


# --- E-mail and phone -----------------------------------------------------------------------------------


def test_an_email_and_a_phone_number_are_accepted(contact_form: Process) -> None:
    cleaned = parameters_clean(contact_form, {"contactEmail": "ops@example.com", "phone": "+1 555 0100"})

    assert cleaned == {"contactEmail": "ops@example.com", "phone": "+1 555 0100"}


def test_it_refuses_an_email_and_a_phone_number_that_are_not(contact_form: Process) -> None:
    errors = errors_of(contact_form, {"contactEmail": "ops(at)example", "phone": "call me"})

    assert errors == {
        "contactEmail": ["Enter a valid email address."],
        "phone": ["Enter a phone number, for example +1 555 0100."],
    }


# --- Numbers --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("amount", "stored"), [(250, 250), ("250", 250), (19.99, 19.99), ("19.90", 19.9), (0, 0)])
def test_an_amount_is_stored_as_a_json_number(process: Callable[[str], Process], amount: Any, stored: Any) -> None:
    cleaned = parameters_clean(process("order-processing"), {**ORDER, "amount": amount})

    assert cleaned["amount"] == stored
    assert type(cleaned["amount"]) is type(stored)


@pytest.mark.parametrize(("amount", "message"), [
    (-1, "Ensure this value is greater than or equal to 0."),
    ("12.345", "Ensure that there are no more than 2 decimal places."),
    ("lots", "Enter a number."),
    (True, "Enter a number, not true/false."),
])
def test_it_refuses_an_amount_that_is_negative_too_precise_or_not_a_number(
    process: Callable[[str], Process], amount: Any, message: str
) -> None:
    assert errors_of(process("order-processing"), {**ORDER, "amount": amount}) == {"amount": [message]}


def test_a_number_above_its_maximum_is_refused(process: Callable[[str], Process]) -> None:
    errors = errors_of(process("failure-demo"), {"failAtStep": 5})

    assert errors == {"failAtStep": ["Ensure this value is less than or equal to 4."]}


# --- Dates and months -----------------------------------------------------------------------------------


def test_custom_period_dates_are_stored_as_iso_strings(process: Callable[[str], Process]) -> None:
    cleaned = parameters_clean(process("report-generation"),
                               {"period": "custom", "startDate": "2024-11-01", "endDate": "2024-11-30"})

    assert cleaned == {"reportType": "Sales", "period": "Custom", "startDate": "2024-11-01", "endDate": "2024-11-30"}


def test_it_refuses_a_date_that_is_not_year_month_day(process: Callable[[str], Process]) -> None:
    errors = errors_of(process("report-generation"),
                       {"period": "Custom", "startDate": "01/11/2024", "endDate": "2024-02-30"})

    assert errors == {"startDate": ["Enter a valid date."], "endDate": ["Enter a valid date."]}


@pytest.mark.parametrize(("month", "stored"), [
    ("2024-11", "2024-11"), ("2024-11-15", "2024-11"), (" 2024-01 ", "2024-01"),
])
def test_a_month_is_stored_as_year_and_month(process: Callable[[str], Process], month: str, stored: str) -> None:
    cleaned = parameters_clean(process("monthly-report"), {"month": month, "revenue": 1, "department": "Sales"})

    assert cleaned["month"] == stored


@pytest.mark.parametrize("month", ["2024-13", "2024-00", "2024-1", "November 2024", "11/2024"])
def test_it_refuses_a_month_it_cannot_read(process: Callable[[str], Process], month: str) -> None:
    errors = errors_of(process("monthly-report"), {"month": month, "revenue": 1, "department": "Sales"})

    assert errors == {"month": [MONTH_MESSAGE]}


# --- Dropdowns and checkboxes ---------------------------------------------------------------------------


@pytest.mark.parametrize("priority", ["high", "HIGH", "High", " high "])
def test_a_priority_matches_its_choice_whatever_the_case(process: Callable[[str], Process], priority: str) -> None:
    cleaned = parameters_clean(process("order-processing"), {"orderId": "ORD-2024-001", "priority": priority})

    assert cleaned == {"orderId": "ORD-2024-001", "priority": "High"}


def test_it_refuses_a_choice_that_is_not_offered(process: Callable[[str], Process]) -> None:
    errors = errors_of(process("order-processing"), {"orderId": "ORD-2024-001", "priority": "urgent"})

    assert errors == {"priority": ["Select a valid choice. urgent is not one of the available choices."]}


@pytest.mark.parametrize(
    ("given", "stored"),
    [("false", False), ("true", True), (True, True), (False, False), ("no", False), ("Off", False), ("yes", True)],
)
def test_a_checkbox_is_stored_as_a_boolean(process: Callable[[str], Process], given: Any, stored: bool) -> None:
    cleaned = parameters_clean(process("order-processing"), {**ORDER, "emailNotification": given})

    assert cleaned == {**ORDER, "emailNotification": stored}


def test_an_unticked_checkbox_that_was_not_sent_is_left_out(process: Callable[[str], Process]) -> None:
    assert parameters_clean(process("data-sync"), {"system": "CRM"}) == {"system": "CRM", "direction": "Both"}


# --- Files, objects and lists ---------------------------------------------------------------------------


MONTHLY = {"month": "2024-11", "revenue": 1000, "department": "Sales"}


def test_a_file_given_as_a_url_is_stored_as_a_reference(process: Callable[[str], Process]) -> None:
    cleaned = parameters_clean(process("monthly-report"),
                               {**MONTHLY, "supportingDocument": "https://files.example.com/kpi.pdf"})

    assert cleaned["supportingDocument"] == {"url": "https://files.example.com/kpi.pdf"}


def test_a_file_given_as_base64_content_is_stored_as_given(process: Callable[[str], Process]) -> None:
    document = {"name": "kpi.csv", "contentBase64": "bW9udGgscmV2ZW51ZQo="}

    cleaned = parameters_clean(process("monthly-report"), {**MONTHLY, "supportingDocument": document})

    assert cleaned["supportingDocument"] == {"name": "kpi.csv", "contentBase64": "bW9udGgscmV2ZW51ZQo="}


@pytest.mark.parametrize("document", ["kpi.pdf", "ftp://files.example.com/kpi.pdf", {"name": "kpi.pdf"}, 42])
def test_it_refuses_a_file_that_is_neither_a_url_nor_content(process: Callable[[str], Process], document: Any) -> None:
    errors = errors_of(process("monthly-report"), {**MONTHLY, "supportingDocument": document})

    assert errors == {"supportingDocument": [FILE_MESSAGE]}


def test_metadata_must_be_an_object(process: Callable[[str], Process]) -> None:
    order = process("order-processing")

    assert parameters_clean(order, {**ORDER, "metadata": {"channel": "web"}})["metadata"] == {"channel": "web"}
    assert parameters_clean(order, {**ORDER, "metadata": '{"channel": "cli"}'})["metadata"] == {"channel": "cli"}
    assert errors_of(order, {**ORDER, "metadata": ["web"]}) == {"metadata": ["Enter an object, not a list."]}


def test_tags_must_be_a_list(contact_form: Process) -> None:
    cleaned = parameters_clean(contact_form, {"contactEmail": "ops@example.com", "tags": ["vip", "eu"]})

    assert cleaned == {"contactEmail": "ops@example.com", "tags": ["vip", "eu"]}
    assert errors_of(contact_form, {"contactEmail": "ops@example.com", "tags": {"vip": True}}) == {
        "tags": ["Enter a list, not an object."]
    }


# --- Defaults and unknown names -------------------------------------------------------------------------


def test_defaults_fill_in_what_was_not_sent(process: Callable[[str], Process]) -> None:
    assert parameters_clean(process("failure-demo"), {}) == {"failAtStep": 3}
    assert parameters_clean(process("data-sync"), {"system": "erp"}) == {"system": "ERP", "direction": "Both"}
    assert parameters_clean(process("report-generation"), {"period": "this month"}) == {
        "reportType": "Sales", "period": "This month"
    }


def test_a_value_sent_replaces_the_default(process: Callable[[str], Process]) -> None:
    assert parameters_clean(process("data-sync"), {"system": "ERP", "direction": "pull"}) == {
        "system": "ERP", "direction": "Pull"
    }


def test_it_names_the_known_parameters_when_it_refuses_an_unknown_one(process: Callable[[str], Process]) -> None:
    assert errors_of(process("data-sync"), {"system": "ERP", "dryRun": True}) == {
        "dryRun": ["Unknown parameter. Known parameters: direction, fullSync, system."]
    }
    assert errors_of(process("test-raise"), {"anything": 1}) == {
        "anything": ["Unknown parameter. Known parameters: none."]
    }


# --- show_if --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("priority", ["High", "high"])
def test_special_instructions_are_kept_for_a_high_priority_order(
    process: Callable[[str], Process], priority: str
) -> None:
    cleaned = parameters_clean(process("order-processing"),
                               {**ORDER, "priority": priority, "specialInstructions": "Leave at the back door"})

    assert cleaned == {**ORDER, "specialInstructions": "Leave at the back door"}


@pytest.mark.parametrize("priority", ["Low", "medium"])
def test_special_instructions_are_dropped_for_other_priorities_without_checking_them(
    process: Callable[[str], Process], priority: str
) -> None:
    cleaned = parameters_clean(process("order-processing"),
                               {**ORDER, "priority": priority, "specialInstructions": "x" * 2000})

    assert cleaned == {"orderId": "ORD-2024-001", "priority": priority.title()}


def test_special_instructions_shown_for_a_high_priority_are_checked(process: Callable[[str], Process]) -> None:
    errors = errors_of(process("order-processing"), {**ORDER, "specialInstructions": "x" * 1001})

    assert errors == {"specialInstructions": ["Ensure this value has at most 1000 characters (it has 1001)."]}


def test_a_required_field_that_is_hidden_is_not_required(process: Callable[[str], Process]) -> None:
    report = process("report-generation")

    assert parameters_clean(report, {"period": "Last month"}) == {"reportType": "Sales", "period": "Last month"}
    assert parameters_clean(report, {"period": "Last month", "startDate": "2024-11-01"}) == {
        "reportType": "Sales", "period": "Last month"
    }


def test_a_required_field_that_is_shown_is_required(process: Callable[[str], Process]) -> None:
    errors = errors_of(process("report-generation"), {"period": "Custom"})

    assert errors == {"startDate": ["This field is required."], "endDate": ["This field is required."]}


@pytest.mark.parametrize(("breakdown", "expected"), [
    ("true", {"regionalBreakdown": True, "region": "EMEA"}),
    ("false", {"regionalBreakdown": False}),
])
def test_a_region_is_kept_only_with_a_regional_breakdown(
    process: Callable[[str], Process], breakdown: str, expected: dict[str, Any]
) -> None:
    cleaned = parameters_clean(process("report-generation"),
                               {"period": "This month", "regionalBreakdown": breakdown, "region": "emea"})

    assert cleaned == {"reportType": "Sales", "period": "This month", **expected}


# --- Custom rules ---------------------------------------------------------------------------------------


def test_a_custom_rule_named_by_a_field_is_applied(contact_form: Process) -> None:
    assert parameters_clean(contact_form, {"contactEmail": "ops@example.com", "quantity": 4}) == {
        "contactEmail": "ops@example.com", "quantity": 4
    }
    assert errors_of(contact_form, {"contactEmail": "ops@example.com", "quantity": 3}) == {
        "quantity": ["Enter an even number."]
    }


def test_a_custom_rule_adds_to_the_built_in_ones(contact_form: Process) -> None:
    errors = errors_of(contact_form, {"contactEmail": "ops@example.com", "quantity": 13})

    assert errors == {"quantity": ["Ensure this value is less than or equal to 10.", "Enter an even number."]}


# --- What is stored -------------------------------------------------------------------------------------


def test_the_cleaned_values_are_plain_json(process: Callable[[str], Process]) -> None:
    given = {
        "month": "2024-11-15",
        "revenue": "125000.50",
        "department": "sales",
        "additionalNotes": "Strong quarter",
        "supportingDocument": "https://files.example.com/kpi.pdf",
    }

    cleaned = parameters_clean(process("monthly-report"), given)

    assert cleaned == {
        "month": "2024-11",
        "revenue": 125000.5,
        "department": "Sales",
        "additionalNotes": "Strong quarter",
        "supportingDocument": {"url": "https://files.example.com/kpi.pdf"},
    }
    assert json.loads(json.dumps(cleaned)) == cleaned
    assert not any(isinstance(value, Decimal) for value in cleaned.values())


def test_all_problems_are_reported_together(process: Callable[[str], Process]) -> None:
    errors = errors_of(process("monthly-report"), {"month": "2024-13", "revenue": -5, "department": "Legal"})

    assert errors == {
        "month": [MONTH_MESSAGE],
        "revenue": ["Ensure this value is greater than or equal to 0."],
        "department": ["Select a valid choice. Legal is not one of the available choices."],
    }


def test_a_date_time_field_takes_iso_8601_and_stores_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry._processes, "test-appointment", registry.ProcessDefinition(
        slug="test-appointment", name="Appointment", func=lambda ctx, params: None,
        parameters=({"name": "startTime", "type": "datetime", "required": True},),
    ))
    process = Process(slug="test-appointment", name="Appointment", default_timeout=60)

    assert parameters_clean(process, {"startTime": "2024-11-03T10:30:00Z"}) == {"startTime": "2024-11-03T10:30:00Z"}
    assert parameters_clean(process, {"startTime": "2024-11-03T12:30:00+02:00"}) == {
        "startTime": "2024-11-03T10:30:00Z"}
    assert errors_of(process, {"startTime": "next tuesday"}) == {
        "startTime": ["Enter an ISO 8601 date-time, for example 2024-11-03T10:30:00Z."]}
    assert errors_of(process, {"startTime": 1730629800}) == {
        "startTime": ["Enter an ISO 8601 date-time, not a number."]}
