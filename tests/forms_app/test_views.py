"""The web forms in the browser, through Django's test client: the list, a form, errors, sending, tracking,
"My requests", retry, and who may see what.

The demo forms ("order-processing", "monthly-metrics") are seeded by forms_app.demo; each test states the
access it relies on, so the tests do not depend on the demo's choice.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from executions.actors import Actor
from executions.models import Execution, ExecutionStatus
from executions.services import execution_start, execution_transition
from forms_app.models import FormAccess, FormDefinition
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

ORDER_URL = "/forms/order-processing/"
METRICS_URL = "/forms/monthly-metrics/"
GOOD_ORDER = {"orderId": "ORD-2024-001", "priority": "Medium", "customerName": "Acme"}
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


# --- Given ----------------------------------------------------------------------------------------------


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def token_of(page: Any) -> str:
    match = re.search(r'name="submission_token" value="([^"]+)"', page.content.decode())
    assert match, "the form has no submission token"
    return match.group(1)


def send(client: Client, url: str, values: dict[str, Any], token: str | None = None) -> Any:
    token = token or token_of(client.get(url))
    return client.post(url, {**values, "submission_token": token})


def started(form: FormDefinition) -> list[Execution]:
    return list(Execution.objects.filter(process=form.process).order_by("id"))


def html(response: Any) -> str:
    return response.content.decode()


# --- The list of forms ----------------------------------------------------------------------------------


def test_an_anonymous_visitor_sees_only_public_forms_and_a_sign_in_link(order_form: FormDefinition) -> None:
    metrics = FormDefinition.objects.get(slug="monthly-metrics")
    metrics.access = FormAccess.PUBLIC
    metrics.save(update_fields=["access"])

    response = Client().get("/forms/")

    assert response.status_code == 200
    assert 'href="/forms/monthly-metrics/"' in html(response)
    assert 'href="/forms/order-processing/"' not in html(response)
    assert 'href="/accounts/login/?next=/forms/"' in html(response)


def test_a_signed_in_user_sees_the_forms_of_their_roles(order_form: FormDefinition, staff_user: User,
                                                        outsider: User) -> None:
    assert 'href="/forms/order-processing/"' in html(signed_in(staff_user).get("/forms/"))
    assert 'href="/forms/order-processing/"' not in html(signed_in(outsider).get("/forms/"))


def test_the_home_page_sends_staff_to_admin_and_everybody_else_to_the_forms(manager: User, outsider: User) -> None:
    assert signed_in(manager).get("/")["Location"] == "/admin/"
    assert signed_in(outsider).get("/")["Location"] == "/forms/"
    assert Client().get("/")["Location"] == "/forms/"


# --- Opening a form -------------------------------------------------------------------------------------


def test_the_order_form_renders_labelled_typed_accessible_fields(order_form: FormDefinition, staff_user: User) -> None:
    response = signed_in(staff_user).get(ORDER_URL)

    page = html(response)
    assert response.status_code == 200
    assert '<label for="field-orderId">Order ID <span class="req" aria-hidden="true">*</span>' in page
    assert re.search(r'<input[^>]* id="field-orderId"[^>]* type="text"[^>]* minlength="10" maxlength="15"', page)
    assert re.search(r'<input[^>]* id="field-orderId"[^>]* required aria-required="true"|'
                     r'<input[^>]* id="field-orderId"[^>]*aria-required="true"', page)
    assert re.search(r'<select[^>]* id="field-priority"', page)
    for choice in ("Low", "Medium", "High"):
        assert f'<option value="{choice}"' in page
    assert re.search(r'<div class="field field-textarea"[^>]* data-show-if-field="field-priority"', page)
    assert re.search(r'id="field-emailNotification"[^>]* type="checkbox"', page)
    assert 'name="csrfmiddlewaretoken"' in page
    assert len(token_of(response)) >= 20
    assert "novalidate" in page


def test_each_rendering_gets_its_own_submission_token(order_form: FormDefinition, staff_user: User) -> None:
    client = signed_in(staff_user)
    assert token_of(client.get(ORDER_URL)) != token_of(client.get(ORDER_URL))


def test_an_anonymous_visitor_of_a_non_public_form_is_sent_to_sign_in(order_form: FormDefinition) -> None:
    response = Client().get(ORDER_URL)

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/forms/order-processing/"


def test_a_user_outside_the_role_gets_the_access_denied_page_and_starts_nothing(
    order_form: FormDefinition, outsider: User
) -> None:
    client = signed_in(outsider)

    opened = client.get(ORDER_URL)
    sent = client.post(ORDER_URL, {**GOOD_ORDER, "submission_token": "x" * 32})

    for response in (opened, sent):
        assert response.status_code == 403
        assert "You cannot use this form" in html(response)
        assert "Ask an administrator to give you access" in html(response)
    assert started(order_form) == []


def test_an_unknown_form_is_a_friendly_404(staff_user: User) -> None:
    response = signed_in(staff_user).get("/forms/no-such-form/")

    assert response.status_code == 404
    assert "We could not find that page" in html(response)


def test_a_paused_process_shows_the_pause_message_and_no_send_button(order_form: FormDefinition,
                                                                     staff_user: User) -> None:
    process = order_form.process
    process.is_paused, process.pause_reason = True, "Stock count until Monday"
    process.save(update_fields=["is_paused", "pause_reason"])
    client = signed_in(staff_user)

    opened = client.get(ORDER_URL)
    sent = client.post(ORDER_URL, {**GOOD_ORDER, "submission_token": "t" * 32})

    assert "This form is paused." in html(opened)
    assert "Stock count until Monday" in html(opened)
    assert "Send request" not in html(opened)
    assert sent.status_code == 409
    assert "This form is paused." in html(sent)
    assert started(order_form) == []


# --- Sending a form -------------------------------------------------------------------------------------


def test_an_invalid_order_id_comes_back_inline_with_the_input_kept(order_form: FormDefinition,
                                                                   staff_user: User) -> None:
    client = signed_in(staff_user)
    token = token_of(client.get(ORDER_URL))

    response = send(client, ORDER_URL, {**GOOD_ORDER, "orderId": "ORD-1", "priority": "High",
                                        "specialInstructions": "Gift wrap"}, token)

    page = html(response)
    assert response.status_code == 200
    assert started(order_form) == []
    assert re.search(r'<p class="field-error" id="field-orderId-error">.*at least 10 characters', page)
    orderid_input = re.search(r'<input[^>]* id="field-orderId"[^>]*>', page).group(0)
    assert 'aria-invalid="true"' in orderid_input
    assert 'aria-describedby="field-orderId-error"' in orderid_input
    assert 'value="ORD-1"' in orderid_input
    assert " autofocus" in orderid_input
    assert '<div class="error-summary" role="alert"' in page
    assert '<a href="#field-orderId">Order ID: ' in page
    assert '<option value="High" selected>' in page
    assert ">Gift wrap</textarea>" in page
    assert 'value="Acme"' in page
    assert token_of(response) == token  # the same page, so a later double send still starts one execution


def test_a_valid_form_starts_an_execution_and_shows_its_tracking_page(order_form: FormDefinition,
                                                                      staff_user: User) -> None:
    client = signed_in(staff_user)

    response = send(client, ORDER_URL, {**GOOD_ORDER, "emailNotification": "true", "email": "sam@example.com"})

    [execution] = started(order_form)
    assert response.status_code == 302
    assert response["Location"] == f"/runs/{execution.public_id}/"
    assert execution.source == "form"
    assert execution.actor_user == staff_user
    assert execution.parameters["orderId"] == "ORD-2024-001"
    assert execution.parameters["priority"] == "Medium"
    assert execution.parameters["emailNotification"] is True
    tracking = client.get(response["Location"])
    assert tracking.status_code == 200
    assert (order_form.success_message or "Your request was sent.") in html(tracking)
    assert execution.public_id in html(tracking)
    assert f'data-status-url="/runs/{execution.public_id}/status.json"' in html(tracking)


def test_sending_the_same_page_twice_starts_one_execution(order_form: FormDefinition, staff_user: User) -> None:
    client = signed_in(staff_user)
    token = token_of(client.get(ORDER_URL))

    first = send(client, ORDER_URL, GOOD_ORDER, token)
    second = send(client, ORDER_URL, GOOD_ORDER, token)

    [execution] = started(order_form)
    assert first["Location"] == second["Location"] == f"/runs/{execution.public_id}/"


def test_a_field_hidden_by_its_condition_is_not_sent(order_form: FormDefinition, staff_user: User) -> None:
    client = signed_in(staff_user)

    send(client, ORDER_URL, {**GOOD_ORDER, "priority": "Low", "specialInstructions": "Gift wrap"})

    [execution] = started(order_form)
    assert "specialInstructions" not in execution.parameters


def test_a_page_without_a_submission_token_is_shown_again_and_starts_nothing(order_form: FormDefinition,
                                                                            staff_user: User) -> None:
    response = signed_in(staff_user).post(ORDER_URL, GOOD_ORDER)

    assert response.status_code == 200
    assert "This page had expired" in html(response)
    assert 'value="ORD-2024-001"' in html(response)
    assert started(order_form) == []


def test_a_form_sent_without_the_csrf_token_is_refused_kindly(order_form: FormDefinition, staff_user: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)

    response = client.post(ORDER_URL, {**GOOD_ORDER, "submission_token": "c" * 32})

    assert response.status_code == 403
    assert "Please send it again" in html(response)
    assert started(order_form) == []


def test_a_department_manager_uploads_a_pdf_with_the_monthly_metrics(department_manager: User) -> None:
    client = signed_in(department_manager)
    form = FormDefinition.objects.get(slug="monthly-metrics")
    opened = html(client.get(METRICS_URL))
    assert 'enctype="multipart/form-data"' in opened
    assert re.search(r'id="field-month"[^>]* type="month"', opened)
    assert re.search(r'id="field-revenue"[^>]* type="number"[^>]* step="0.01"', opened)
    assert '<span class="prefix" id="field-revenue-prefix" aria-label="in $">$</span>' in opened
    assert re.search(r'type="file"[^>]* accept="[^"]*\.pdf', opened)

    response = client.post(METRICS_URL, {
        "month": "2024-11", "revenue": "125000.50", "department": "Sales", "additionalNotes": "Good month",
        "supportingDocument": SimpleUploadedFile("kpi.pdf", PDF, content_type="application/pdf"),
        "submission_token": token_of(client.get(METRICS_URL)),
    })

    [execution] = started(form)
    assert response["Location"] == f"/runs/{execution.public_id}/"
    assert execution.parameters["month"] == "2024-11"
    assert execution.parameters["department"] == "Sales"
    assert execution.parameters["supportingDocument"]["name"] == "kpi.pdf"


def test_a_file_that_is_not_what_its_name_says_comes_back_as_an_inline_error(department_manager: User) -> None:
    client = signed_in(department_manager)

    response = client.post(METRICS_URL, {
        "month": "2024-11", "revenue": "10", "department": "Sales",
        "supportingDocument": SimpleUploadedFile("kpi.pdf", b"MZ\x90\x00 not a pdf", content_type="application/pdf"),
        "submission_token": token_of(client.get(METRICS_URL)),
    })

    page = html(response)
    assert response.status_code == 200
    assert 'id="field-supportingDocument-error"' in page
    assert "choose the file again" in page
    assert 'value="10"' in page
    assert started(FormDefinition.objects.get(slug="monthly-metrics")) == []


def test_an_oversized_upload_is_a_form_error_not_a_server_error(department_manager: User, settings: Any) -> None:
    settings.HEPTORA_FORM_MAX_UPLOAD_MB = 1
    client = signed_in(department_manager)

    response = client.post(METRICS_URL, {
        "month": "2024-11", "revenue": "10", "department": "Sales",
        "supportingDocument": SimpleUploadedFile("big.pdf", PDF + b"0" * (3 * 1024 * 1024)),
        "submission_token": token_of(client.get(METRICS_URL)),
    })

    assert response.status_code == 413
    assert "What you sent is too large (at most 2 MB in all)" in html(response)
    assert started(FormDefinition.objects.get(slug="monthly-metrics")) == []


def test_too_much_text_is_a_form_error_not_a_server_error(order_form: FormDefinition, staff_user: User,
                                                         settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    client = signed_in(staff_user)

    response = send(client, ORDER_URL, {**GOOD_ORDER, "customerName": "x" * 5000})

    assert response.status_code == 413
    assert "What you sent is too large" in html(response)
    assert started(order_form) == []


def test_an_anonymous_visitor_of_a_public_form_follows_their_own_request_only(order_form: FormDefinition) -> None:
    order_form.access = FormAccess.PUBLIC
    order_form.save(update_fields=["access"])
    visitor, stranger = Client(), Client()

    response = send(visitor, ORDER_URL, GOOD_ORDER)

    [execution] = started(order_form)
    assert execution.actor_kind == "anonymous"
    assert response["Location"] == f"/runs/{execution.public_id}/"
    assert visitor.get(response["Location"]).status_code == 200
    assert visitor.get(f"/runs/{execution.public_id}/status.json").status_code == 200
    assert stranger.get(response["Location"]).status_code == 404
    assert stranger.get(f"/runs/{execution.public_id}/status.json").status_code == 404


# --- Tracking -------------------------------------------------------------------------------------------


def start_order(user: User, **parameters: Any) -> Execution:
    return execution_start(process_id="order-processing", parameters={**GOOD_ORDER, **parameters}, source="form",
                           actor=Actor.for_user(user))


def test_the_status_json_says_status_progress_step_and_latest_events(order_form: FormDefinition,
                                                                     staff_user: User) -> None:
    execution = start_order(staff_user)
    Execution.objects.filter(pk=execution.pk).update(
        status=ExecutionStatus.RUNNING, current_step=2, total_steps=5, percent=40,
        progress_message="Checking inventory")

    response = signed_in(staff_user).get(f"/runs/{execution.public_id}/status.json")

    body = response.json()
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    assert body["status"] == "running"
    assert body["statusLabel"] == "Running"
    assert body["final"] is False
    assert body["progress"] == {"step": 2, "totalSteps": 5, "percent": 40, "text": "Step 2/5 — 40%"}
    assert body["message"] == "Checking inventory"
    assert body["result"] is None
    assert body["error"] is None
    assert body["canRetry"] is False
    assert body["events"][0]["message"] == "Queued: started by sam via Web form"


def test_someone_elses_request_is_not_found_not_forbidden(order_form: FormDefinition, staff_user: User,
                                                          outsider: User) -> None:
    execution = start_order(staff_user)
    client = signed_in(outsider)

    assert client.get(f"/runs/{execution.public_id}/").status_code == 404
    assert client.get(f"/runs/{execution.public_id}/status.json").status_code == 404
    assert client.get("/runs/exec-0000000000000000/").status_code == 404
    assert client.post(f"/runs/{execution.public_id}/retry/").status_code == 404


def test_a_manager_who_oversees_the_process_sees_the_request(order_form: FormDefinition, staff_user: User,
                                                             manager: User) -> None:
    from guardian.shortcuts import assign_perm

    assign_perm("executions.view_process_executions", manager, order_form.process)
    execution = start_order(staff_user)

    assert signed_in(manager).get(f"/runs/{execution.public_id}/").status_code == 200


def test_a_failed_request_can_be_tried_again_once(order_form: FormDefinition, staff_user: User) -> None:
    execution = start_order(staff_user)
    execution_transition(execution=execution, to=ExecutionStatus.FAILED, message="Payment declined",
                         error_code="payment_declined", error_message="The card was declined.")
    client = signed_in(staff_user)
    page = html(client.get(f"/runs/{execution.public_id}/"))
    assert "The card was declined." in page
    assert re.search(r'<form method="post" action="/runs/[^"]+/retry/" id="run-retry" class="actions"\s+data', page)

    first = client.post(f"/runs/{execution.public_id}/retry/")
    second = client.post(f"/runs/{execution.public_id}/retry/")

    [retry] = Execution.objects.filter(retry_of=execution)
    assert first["Location"] == f"/runs/{retry.public_id}/"
    assert second["Location"] == f"/runs/{execution.public_id}/"
    assert "already being retried" in html(client.get(second["Location"]))
    assert retry.parameters == execution.parameters
    assert retry.source == "form"


def test_a_form_user_without_the_process_permission_retries_on_the_forms_authority(
    forms: dict[str, FormDefinition], outsider: User
) -> None:
    """The order form is open to any signed-in user; Olga holds no permission on the process itself."""
    form = forms["order-processing"]
    form.access = FormAccess.AUTHENTICATED
    form.save(update_fields=["access"])
    client = signed_in(outsider)
    sent = send(client, ORDER_URL, GOOD_ORDER)
    execution = Execution.objects.get()
    assert sent["Location"] == f"/runs/{execution.public_id}/"
    execution_transition(execution=execution, to=ExecutionStatus.FAILED, message="Payment declined")

    retried = client.post(f"/runs/{execution.public_id}/retry/")

    [retry] = Execution.objects.filter(retry_of=execution)
    assert retried["Location"] == f"/runs/{retry.public_id}/"
    assert retry.actor_user == outsider


def test_a_running_request_offers_no_retry_and_refuses_one(order_form: FormDefinition, staff_user: User) -> None:
    execution = start_order(staff_user)
    client = signed_in(staff_user)

    page = html(client.get(f"/runs/{execution.public_id}/"))
    response = client.post(f"/runs/{execution.public_id}/retry/")

    assert re.search(r'id="run-retry" class="actions" hidden', page)
    assert response["Location"] == f"/runs/{execution.public_id}/"
    assert not Execution.objects.filter(retry_of=execution).exists()


# --- My requests ----------------------------------------------------------------------------------------


def test_my_requests_lists_only_my_requests_newest_first(order_form: FormDefinition, staff_user: User,
                                                         admin_user: User) -> None:
    mine = [start_order(staff_user, orderId=f"ORD-2024-00{n}") for n in range(3)]
    theirs = start_order(admin_user)

    page = html(signed_in(staff_user).get("/runs/"))

    shown = re.findall(r'href="/runs/(exec-[0-9a-f]+)/"', page)
    assert shown == [e.public_id for e in reversed(mine)]
    assert theirs.public_id not in page


def test_my_requests_filters_by_status_and_pages(order_form: FormDefinition, staff_user: User) -> None:
    executions = [start_order(staff_user) for _ in range(22)]
    execution_transition(execution=executions[0], to=ExecutionStatus.CANCELLED, message="Cancelled")
    client = signed_in(staff_user)

    cancelled = html(client.get("/runs/?status=cancelled"))
    first_page = html(client.get("/runs/"))
    second_page = html(client.get("/runs/?page=2"))

    assert re.findall(r'href="/runs/(exec-[0-9a-f]+)/"', cancelled) == [executions[0].public_id]
    assert len(re.findall(r'href="/runs/(exec-[0-9a-f]+)/"', first_page)) == 20
    assert len(re.findall(r'href="/runs/(exec-[0-9a-f]+)/"', second_page)) == 2
    assert "Page 2 of 2" in second_page


def test_my_requests_needs_a_sign_in() -> None:
    response = Client().get("/runs/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/runs/"


# --- Signing in and out ---------------------------------------------------------------------------------


def test_signing_in_returns_to_the_form(order_form: FormDefinition, staff_user: User) -> None:
    client = Client()
    assert "Sign in" in html(client.get("/accounts/login/?next=/forms/order-processing/"))

    wrong = client.post("/accounts/login/", {"username": "sam", "password": "nope", "next": ORDER_URL})
    right = client.post("/accounts/login/", {"username": "sam", "password": PASSWORD, "next": ORDER_URL})

    assert "We could not sign you in" in html(wrong)
    assert right["Location"] == ORDER_URL
    assert client.get(ORDER_URL).status_code == 200


def test_signing_out_is_a_post_and_a_get_offers_the_button(staff_user: User) -> None:
    client = signed_in(staff_user)

    offered = client.get("/accounts/logout/")
    response = client.post("/accounts/logout/")

    assert '<form method="post" action="/accounts/logout/">' in html(offered)
    assert response["Location"] == "/forms/"
    assert client.get("/runs/").status_code == 302
