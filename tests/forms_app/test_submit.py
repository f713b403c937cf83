"""A person fills a form and sends it: what they see pre-filled, what is checked, what starts, and that a
double click, a resubmitted page or two POSTs at the same moment start one execution."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core import mail
from django.db import connections
from guardian.shortcuts import assign_perm

from executions import services as executions_services
from executions.errors import InvalidParameters, LaunchDenied, ProcessPaused
from executions.models import ActorKind, Execution, ExecutionStatus
from forms_app.demo import MONTHLY_METRICS_FORM, ORDER_FORM
from forms_app.models import FormAccess, FormDefinition, FormSubmission, StaffProfile
from forms_app.services import form_import, form_initial, form_submit, form_web_fields
from notifications.models import Notification
from notifications.services import notification_send
from tests.forms_app.conftest import PDF, FormFactory, as_user, office_open_xml, stored_files, upload

ORDER = {"orderId": "ORD-2024-001", "customerName": "Acme Ltd", "priority": "Low"}
METRICS = {"month": "2024-11", "revenue": "125000.50", "department": "Sales"}


@pytest.fixture
def order_form(db: None) -> FormDefinition:
    return form_import(ORDER_FORM)


@pytest.fixture
def metrics_form(db: None, manager: User) -> FormDefinition:
    form = form_import(MONTHLY_METRICS_FORM)
    manager.groups.add(Group.objects.get(name="Department Managers"))
    return form


def submit(form: FormDefinition, data: dict[str, Any], *, user: User | None = None, token: str = "token-1",
           files: dict[str, Any] | None = None, session_key: str = "session-1") -> Execution:
    return form_submit(form, data=data, files=files or {}, submitter=as_user(user, session_key),
                       submission_token=token)


def refused(form: FormDefinition, data: dict[str, Any], **kwargs: Any) -> dict[str, list[str]]:
    with pytest.raises(InvalidParameters) as caught:
        submit(form, data, **kwargs)
    return caught.value.field_errors


# --- What the form shows --------------------------------------------------------------------------------


def test_the_web_form_shows_the_fields_a_person_fills_in_order(order_form: FormDefinition) -> None:
    fields = form_web_fields(order_form)

    assert [(f["name"], f["required"]) for f in fields] == [
        ("orderId", True), ("customerName", True), ("priority", True), ("specialInstructions", False),
        ("emailNotification", False), ("email", True)]


def test_the_month_starts_on_the_current_month_and_the_department_on_the_managers(
    metrics_form: FormDefinition, manager: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("django.utils.timezone.localdate", lambda: dt.date(2024, 11, 17))
    StaffProfile.objects.create(user=manager, department="finance")

    assert form_initial(metrics_form, manager) == {"month": "2024-11", "department": "Finance"}


def test_a_date_field_starts_on_the_first_day_of_the_current_month(
    make_form: FormFactory, staff_user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("django.utils.timezone.localdate", lambda: dt.date(2024, 11, 17))
    form = make_form([{"name": "text", "type": "text"}, {"name": "day", "type": "date", "default_current_month": True}])

    assert form_initial(form, staff_user) == {"day": "2024-11-01"}


def test_name_and_email_come_from_the_signed_in_users_profile(make_form: FormFactory, staff_user: User) -> None:
    form = make_form([{"name": "text", "type": "text", "profile_default": "name", "default": "Someone"},
                      {"name": "contact", "type": "email", "profile_default": "email"},
                      {"name": "department", "type": "text", "profile_default": "department"}])

    assert form_initial(form, staff_user) == {"text": "sam", "contact": "sam@example.com"}
    staff_user.first_name, staff_user.last_name = "Sam", "Stone"
    StaffProfile.objects.create(user=staff_user, department="Operations")
    assert form_initial(form, staff_user) == {"text": "Sam Stone", "contact": "sam@example.com",
                                              "department": "Operations"}


def test_an_anonymous_visitor_gets_only_the_plain_defaults(make_form: FormFactory) -> None:
    from django.contrib.auth.models import AnonymousUser

    form = make_form([{"name": "text", "type": "text", "profile_default": "name", "default": "Someone"}],
                     access=FormAccess.PUBLIC)

    assert form_initial(form, AnonymousUser()) == {"text": "Someone"}


# --- Sending it -----------------------------------------------------------------------------------------


def test_a_sent_order_starts_an_execution_as_the_signed_in_person(order_form: FormDefinition,
                                                                   staff_user: User) -> None:
    execution = submit(order_form, {**ORDER, "csrfmiddlewaretoken": "x"}, user=staff_user)

    assert (execution.process.slug, execution.status, execution.source) == ("order-processing", "queued", "form")
    assert (execution.actor_kind, execution.actor_ref, execution.actor_user) == (
        ActorKind.USER, f"user:{staff_user.pk}", staff_user)
    assert execution.parameters == ORDER
    assert FormSubmission.objects.get().execution == execution


def test_hidden_fields_and_fields_only_integrators_send_are_dropped(order_form: FormDefinition,
                                                                     outsider: User) -> None:
    data = {**ORDER, "specialInstructions": "x" * 5000, "metadata": '{"forged": true}', "amount": "1"}

    execution = submit(order_form, data, user=outsider)

    assert execution.parameters == ORDER


def test_a_shown_conditional_field_is_required_and_kept(order_form: FormDefinition, outsider: User) -> None:
    assert refused(order_form, {**ORDER, "emailNotification": "on", "email": ""}, user=outsider) == {
        "email": ["This field is required."]}

    execution = submit(order_form, {**ORDER, "priority": "High", "specialInstructions": "Fragile",
                                    "emailNotification": "on", "email": "buyer@example.com"}, user=outsider)

    assert execution.parameters == {**ORDER, "priority": "High", "specialInstructions": "Fragile",
                                    "emailNotification": True, "email": "buyer@example.com"}


def test_every_mistake_is_reported_at_once_and_nothing_starts(order_form: FormDefinition, outsider: User) -> None:
    errors = refused(order_form, {"orderId": "ORD-1", "priority": "Urgent"}, user=outsider)

    assert errors == {
        "orderId": ["Ensure this value has at least 10 characters (it has 5)."],
        "customerName": ["This field is required."],
        "priority": ["Select a valid choice. Urgent is not one of the available choices."],
    }
    assert (Execution.objects.count(), FormSubmission.objects.count()) == (0, 0)


def test_a_form_that_requires_approval_starts_an_execution_awaiting_it(order_form: FormDefinition,
                                                                        outsider: User) -> None:
    order_form.requires_approval = True
    order_form.save()

    assert submit(order_form, ORDER, user=outsider).status == ExecutionStatus.AWAITING_APPROVAL


def test_a_paused_process_refuses_the_form_and_writes_nothing(order_form: FormDefinition, outsider: User) -> None:
    executions_services.process_pause(process=order_form.process, reason="Stock-take")

    with pytest.raises(ProcessPaused):
        submit(order_form, ORDER, user=outsider)

    assert (Execution.objects.count(), FormSubmission.objects.count()) == (0, 0)


def test_a_person_without_access_cannot_send_it(metrics_form: FormDefinition, staff_user: User) -> None:
    with pytest.raises(LaunchDenied, match=r"^You are not allowed to use the form 'Submit Monthly Metrics'\.$"):
        submit(metrics_form, METRICS, user=staff_user)

    assert Execution.objects.count() == 0


def test_an_anonymous_visitor_of_a_public_form_is_recorded_by_a_hash_of_their_session(
    make_form: FormFactory
) -> None:
    form = make_form([{"name": "text", "type": "text", "required": True}], access=FormAccess.PUBLIC)

    execution = submit(form, {"text": "hi"}, session_key="abc123")

    assert (execution.actor_kind, execution.actor_label, execution.actor_user) == ("anonymous", "anonymous", None)
    assert execution.actor_ref == "session:6ca13d52ca70c883"
    assert "abc123" not in execution.actor_ref


# --- A double click, a resubmitted page, two POSTs at once ----------------------------------------------


def test_the_same_page_sent_twice_starts_one_execution(order_form: FormDefinition, outsider: User) -> None:
    first = submit(order_form, ORDER, user=outsider, token="page-1")
    again = submit(order_form, {**ORDER, "priority": "High"}, user=outsider, token="page-1")
    other_page = submit(order_form, ORDER, user=outsider, token="page-2")

    assert again.public_id == first.public_id
    assert other_page.public_id != first.public_id
    assert Execution.objects.count() == 2


def test_someone_elses_token_does_not_reveal_their_execution(order_form: FormDefinition, outsider: User,
                                                               staff_user: User) -> None:
    submit(order_form, ORDER, user=outsider, token="page-1")

    assert refused(order_form, ORDER, user=staff_user, token="page-1") == {
        "__all__": ["This page is out of date; reload it and send the form again."]}
    assert Execution.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_posts_of_the_same_page_at_the_same_moment_start_one_execution(outsider: User) -> None:
    form = form_import(ORDER_FORM)
    barrier = threading.Barrier(2)
    results: list[Any] = []

    def send() -> None:
        try:
            barrier.wait()
            results.append(submit(form, ORDER, user=outsider, token="same-page").public_id)
        except Exception as exc:  # reported below
            results.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(results) == 2 and results[0] == results[1], results
    assert Execution.objects.count() == 1
    assert FormSubmission.objects.get().execution.public_id == results[0]


# --- Files ----------------------------------------------------------------------------------------------


def test_an_attached_document_is_stored_and_handed_on_as_a_reference(
    metrics_form: FormDefinition, manager: User, media: Path
) -> None:
    document = upload("october kpi.xlsx", office_open_xml("xl"))

    execution = submit(metrics_form, METRICS, user=manager, files={"supportingDocument": document})

    reference = execution.parameters["supportingDocument"]
    assert stored_files(media) == [reference["path"]]
    assert reference["path"].startswith("form-uploads/monthly-metrics/")
    assert {k: v for k, v in reference.items() if k != "path"} == {
        "name": "october_kpi.xlsx", "size": len(office_open_xml("xl")),
        "contentType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "sha256": reference["sha256"]}
    assert len(reference["sha256"]) == 64


def test_a_pdf_that_is_not_a_pdf_is_refused_and_nothing_is_kept(
    metrics_form: FormDefinition, manager: User, media: Path
) -> None:
    fake = upload("report.pdf", b"<html>not a pdf</html>", "application/pdf")

    errors = refused(metrics_form, {**METRICS, "revenue": "-1"}, user=manager, files={"supportingDocument": fake})

    assert errors == {"revenue": ["Ensure this value is greater than or equal to 0."],
                      "supportingDocument": ["“report.pdf” is named like a PDF file, but its content is not PDF."]}
    assert stored_files(media) == []
    assert Execution.objects.count() == 0


def test_an_upload_of_a_submission_that_fails_is_deleted(metrics_form: FormDefinition, manager: User,
                                                          media: Path) -> None:
    errors = refused(metrics_form, {**METRICS, "department": "Legal"}, user=manager,
                     files={"supportingDocument": upload("kpi.pdf", PDF)})

    assert list(errors) == ["department"]
    assert stored_files(media) == []


def test_a_file_over_the_limit_is_refused(metrics_form: FormDefinition, manager: User, settings: Any,
                                          media: Path) -> None:
    settings.HEPTORA_FORM_MAX_UPLOAD_MB = 1

    errors = refused(metrics_form, METRICS, user=manager,
                     files={"supportingDocument": upload("kpi.pdf", PDF + b"0" * 2 * 1024 * 1024)})

    assert errors == {"supportingDocument": ["“kpi.pdf” is 2.1 MB; the largest file allowed is 1 MB."]}
    assert stored_files(media) == []


def test_the_upload_of_a_hidden_file_field_is_ignored(make_form: FormFactory, staff_user: User,
                                                      media: Path) -> None:
    form = make_form([{"name": "text", "type": "text", "required": True},
                      {"name": "attach", "type": "checkbox"},
                      {"name": "document", "type": "file", "show_if_field": "attach", "show_if_value": True}])

    execution = submit(form, {"text": "hi"}, user=staff_user, files={"document": upload("kpi.pdf", PDF)})

    assert execution.parameters == {"text": "hi"}
    assert stored_files(media) == []


# --- Confirmation e-mail --------------------------------------------------------------------------------


def test_a_manager_gets_a_receipt_now_and_the_outcome_later(
    metrics_form: FormDefinition, manager: User, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks():
        execution = submit(metrics_form, METRICS, user=manager)
    receipt = Notification.objects.get()

    notification_send(notification_pk=receipt.pk)

    assert execution.notify_email == "maria@example.com"  # the outcome e-mail, when it ends
    [message] = mail.outbox
    assert message.to == ["maria@example.com"]
    assert message.subject == f"We received your request: Submit Monthly Metrics ({execution.public_id})"
    assert f"Reference: {execution.public_id}" in message.body
    assert "Report submitted successfully. You will receive confirmation within 30 minutes." in message.body


def test_an_anonymous_sender_gets_the_receipt_at_the_address_they_typed(make_form: FormFactory) -> None:
    form = make_form([{"name": "text", "type": "text", "required": True},
                      {"name": "contact", "type": "email", "required": True}],
                     access=FormAccess.PUBLIC, confirmation_email=True)

    execution = submit(form, {"text": "hi", "contact": "visitor@example.com"})

    assert Notification.objects.get().recipient == "visitor@example.com"
    assert execution.notify_email == "visitor@example.com"


def test_no_receipt_when_the_form_does_not_ask_for_one(order_form: FormDefinition, staff_user: User) -> None:
    execution = submit(order_form, ORDER, user=staff_user)

    assert (execution.notify_email, Notification.objects.count()) == ("", 0)


def test_a_restricted_form_is_open_to_a_user_given_it_directly(metrics_form: FormDefinition,
                                                                outsider: User) -> None:
    assign_perm("forms_app.use_form", outsider, metrics_form)

    assert submit(metrics_form, METRICS, user=outsider).status == "queued"
