"""The Django admin as an admin and a manager use it: Run now, pause/resume, and the execution history."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from guardian.shortcuts import assign_perm

from executions import demo, services
from executions.actors import Actor
from executions.errors import ProcessPaused
from executions.models import EventLevel, Execution, ExecutionEvent, ExecutionStatus, Process

S = ExecutionStatus
ORDER = {"orderId": "ORD-2024-001", "priority": "High"}
PROCESSES = reverse("admin:executions_process_changelist")
EXECUTIONS = reverse("admin:executions_execution_changelist")

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "execution_publish", lambda **kwargs: None)


@pytest.fixture
def order() -> Process:
    return Process.objects.get(slug="order-processing")


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def as_admin(admin_user: User) -> Client:
    return logged_in(admin_user)


@pytest.fixture
def clerk(db: None) -> User:
    """Can use the admin site and see processes, but may start none."""
    user = User.objects.create_user("carl", "carl@example.com", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_process"))
    return user


def run_url(process: Process) -> str:
    return reverse("admin:executions_process_run", args=[process.pk])


def change_url(execution: Execution) -> str:
    return reverse("admin:executions_execution_change", args=[execution.pk])


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def started(process_id: str = "order-processing", parameters: dict[str, Any] = ORDER, *,
            source: str = "cli") -> Execution:
    return services.execution_start(process_id=process_id, parameters=dict(parameters), source=source,
                                     actor=Actor.system("cli:test"))


def failed(execution: Execution) -> Execution:
    services.execution_claim(execution_pk=execution.pk, lease="lease-1", worker="w1@test")
    services.execution_transition(
        execution=execution, to=S.FAILED, expect_lease="lease-1", level=EventLevel.ERROR,
        message="Failed at step 3/5: The card was declined.", event_data={"code": "card_declined", "step": 3},
        error_code="card_declined", error_message="The card was declined.", error_step=3,
    )
    return execution


def succeeded(execution: Execution) -> Execution:
    services.execution_claim(execution_pk=execution.pk, lease="lease-1", worker="w1@test")
    services.execution_transition(execution=execution, to=S.SUCCESS, expect_lease="lease-1",
                                  message="Completed successfully", result={"done": True})
    return execution


def act(client: Client, url: str, action: str, *objects: Any) -> Any:
    return client.post(url, {"action": action, "_selected_action": [o.pk for o in objects]}, follow=True)


# --- Processes: Run now ----------------------------------------------------------------------------------


def test_it_offers_run_now_on_every_process_in_the_list(as_admin: Client, order: Process) -> None:
    response = as_admin.get(PROCESSES)

    assert response.status_code == 200
    assert f'<a class="button" href="{run_url(order)}">Run now</a>' in response.text
    assert response.text.count(">Run now</a>") == Process.objects.count()


def test_it_shows_the_order_form_on_the_run_now_page(as_admin: Client, order: Process) -> None:
    response = as_admin.get(run_url(order))

    assert response.status_code == 200
    assert list(response.context["params_form"].fields) == [
        "orderId", "priority", "customerName", "customerId", "amount", "specialInstructions", "emailNotification",
        "metadata"]
    assert '<label for="id_p-orderId">Order ID:</label>' in response.text
    assert '<label for="id_p-priority">Priority:</label>' in response.text
    assert '<option value="High">High</option>' in response.text
    assert "This process is paused" not in response.text


def test_it_starts_an_execution_from_run_now_as_the_admin(as_admin: Client, admin_user: User, order: Process) -> None:
    response = as_admin.post(run_url(order), {"p-orderId": "ORD-2024-001", "p-priority": "high",
                                              "notify_email": "ops@example.com", "timeout": "120"})

    execution = Execution.objects.get()
    assert response.status_code == 302
    assert response["Location"] == change_url(execution)
    assert (execution.source, execution.actor_user, execution.actor_label) == ("manual", admin_user, "ada")
    assert execution.parameters == {"orderId": "ORD-2024-001", "priority": "High"}
    assert (execution.status, execution.timeout, execution.notify_email) == (S.QUEUED, 120, "ops@example.com")
    page = as_admin.get(response["Location"])
    assert messages_of(page) == [f"Started {execution.public_id}: Queued."]


def test_it_shows_a_bad_order_id_next_to_the_field_and_starts_nothing(as_admin: Client, order: Process) -> None:
    response = as_admin.post(run_url(order), {"p-orderId": "ORD-1", "p-priority": "High"})

    assert response.status_code == 200
    assert response.context["params_form"].errors == {
        "orderId": ["Ensure this value has at least 10 characters (it has 5)."]}
    assert response.text.count("Ensure this value has at least 10 characters (it has 5).") == 1
    assert '<div class="form-row errors">' in response.text
    assert not Execution.objects.exists()


def test_it_refuses_to_run_a_paused_process_and_starts_nothing(as_admin: Client, order: Process) -> None:
    services.process_pause(process=order, reason="stock count")

    response = as_admin.post(run_url(order), {"p-orderId": "ORD-2024-001", "p-priority": "High"})

    assert response.status_code == 200
    assert messages_of(response) == [
        "The process 'order-processing' is paused and does not accept new starts (stock count)."]
    assert "This process is paused and refuses new starts." in response.text
    assert not Execution.objects.exists()


def test_it_tells_a_user_without_execute_permission_they_may_not_run_it(clerk: User, order: Process) -> None:
    client = logged_in(clerk)

    shown = client.get(run_url(order))
    response = client.post(run_url(order), {"p-orderId": "ORD-2024-001", "p-priority": "High"})

    assert shown.status_code == 200
    assert messages_of(shown) == ["You are not allowed to start the process 'order-processing'."]
    assert response.status_code == 200
    assert messages_of(response) == ["You are not allowed to start the process 'order-processing'."]
    assert not Execution.objects.exists()


# --- Processes: pause and resume -------------------------------------------------------------------------


def test_it_pauses_selected_processes_so_they_refuse_new_starts(as_admin: Client, order: Process) -> None:
    response = act(as_admin, PROCESSES, "pause_processes", order)

    assert messages_of(response) == ["Paused 1 process(es)."]
    order.refresh_from_db()
    assert (order.is_paused, order.pause_reason) == (True, "paused by ada")
    assert order.paused_at is not None
    with pytest.raises(ProcessPaused):
        started()
    assert not Execution.objects.exists()


def test_it_resumes_selected_processes_so_they_accept_starts_again(as_admin: Client, order: Process) -> None:
    services.process_pause(process=order, reason="stock count")

    response = act(as_admin, PROCESSES, "resume_processes", order)

    assert messages_of(response) == ["Resumed 1 process(es)."]
    order.refresh_from_db()
    assert (order.is_paused, order.pause_reason, order.paused_at) == (False, "", None)
    assert started().status == S.QUEUED


# --- Executions: history ---------------------------------------------------------------------------------


@pytest.fixture
def history() -> dict[str, Execution]:
    return {
        "queued": started(),
        "failed": failed(started()),
        "echo": started("test-echo", {"text": "hi"}, source="manual"),
    }


def listed(response: Any) -> set[str]:
    assert response.status_code == 200
    return {e.public_id for e in response.context["cl"].result_list}


def test_it_filters_executions_by_status_process_and_source(as_admin: Client, history: dict[str, Execution]) -> None:
    echo = Process.objects.get(slug="test-echo")

    assert listed(as_admin.get(EXECUTIONS)) == {e.public_id for e in history.values()}
    assert listed(as_admin.get(EXECUTIONS, {"status__exact": "failed"})) == {history["failed"].public_id}
    assert listed(as_admin.get(EXECUTIONS, {"process__id__exact": echo.pk})) == {history["echo"].public_id}
    assert listed(as_admin.get(EXECUTIONS, {"source__exact": "cli"})) == {
        history["queued"].public_id, history["failed"].public_id}


def test_it_shows_an_execution_with_its_events_read_only(as_admin: Client, history: dict[str, Execution]) -> None:
    execution = history["failed"]

    response = as_admin.get(change_url(execution))

    assert response.status_code == 200
    messages = re.findall(r"<tr><td>[^<]+</td><td>\w+</td><td>\w+</td><td>([^<]+)</td></tr>", response.text)
    assert messages == [
        "Queued: started by cli:test via Command line",
        "Started on w1@test (attempt 1)",
        "Failed at step 3/5: The card was declined.",
    ]
    assert 'name="_save"' not in response.text
    assert 'name="_continue"' not in response.text


def test_it_changes_nothing_when_an_execution_page_is_posted(as_admin: Client, history: dict[str, Execution]) -> None:
    execution = history["queued"]

    response = as_admin.post(change_url(execution), {"status": "success", "error_message": "edited"})

    assert response.status_code == 403
    execution.refresh_from_db()
    assert (execution.status, execution.error_message) == (S.QUEUED, "")


def test_it_allows_neither_adding_nor_deleting_executions(as_admin: Client, history: dict[str, Execution]) -> None:
    execution = history["failed"]

    added = as_admin.post(reverse("admin:executions_execution_add"), {"status": "queued"})
    deleted = as_admin.post(reverse("admin:executions_execution_delete", args=[execution.pk]), {"post": "yes"})
    listing = as_admin.get(EXECUTIONS)

    assert (added.status_code, deleted.status_code) == (403, 403)
    assert Execution.objects.count() == 3
    assert [name for name, _ in listing.context["action_form"].fields["action"].choices] == [
        "", "cancel_executions", "retry_executions"]


def test_it_cancels_a_queued_execution_and_warns_about_a_finished_one(
    as_admin: Client, history: dict[str, Execution]
) -> None:
    queued, done = history["queued"], succeeded(started())

    response = act(as_admin, EXECUTIONS, "cancel_executions", queued, done)

    assert messages_of(response) == [
        f"{done.public_id} has already finished (success); there is nothing to cancel.",
        "Cancel requested for 1 execution(s).",
    ]
    queued.refresh_from_db()
    done.refresh_from_db()
    assert (queued.status, done.status) == (S.CANCELLED, S.SUCCESS)
    assert queued.events.last().message == "Cancelled by ada"


def test_it_retries_a_failed_execution_as_a_new_one(
    as_admin: Client, admin_user: User, history: dict[str, Execution]
) -> None:
    original = history["failed"]

    response = act(as_admin, EXECUTIONS, "retry_executions", original)

    assert messages_of(response) == ["Retry requested for 1 execution(s)."]
    retry = Execution.objects.get(retry_of=original)
    assert (retry.status, retry.source, retry.actor_user) == (S.QUEUED, "manual", admin_user)
    assert retry.parameters == original.parameters
    original.refresh_from_db()
    assert original.status == S.FAILED


# --- Who may see executions ------------------------------------------------------------------------------


@pytest.fixture
def seeded_manager(manager: User, settings: Any) -> User:
    """The manager with the Managers permissions the demo seed gives."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    demo.seed(lambda line: None)
    return manager


def test_it_shows_a_manager_every_execution(seeded_manager: User, history: dict[str, Execution]) -> None:
    client = logged_in(seeded_manager)

    assert listed(client.get(EXECUTIONS)) == {e.public_id for e in history.values()}
    page = client.get(change_url(history["failed"]))
    assert page.status_code == 200
    assert "Failed at step 3/5: The card was declined." in page.text


def test_it_lets_a_manager_cancel_an_execution_someone_else_started(
    seeded_manager: User, history: dict[str, Execution]
) -> None:
    execution = history["queued"]

    response = act(logged_in(seeded_manager), EXECUTIONS, "cancel_executions", execution)

    assert messages_of(response) == ["Cancel requested for 1 execution(s)."]
    execution.refresh_from_db()
    assert execution.status == S.CANCELLED
    assert execution.events.last().message == "Cancelled by maria"


def test_it_refuses_executions_to_a_staff_user_without_the_view_permission(
    clerk: User, history: dict[str, Execution]
) -> None:
    response = logged_in(clerk).get(EXECUTIONS)

    assert response.status_code == 403


def test_it_sends_a_user_without_admin_access_to_the_login_page(
    outsider: User, history: dict[str, Execution]
) -> None:
    client = logged_in(outsider)

    listing = client.get(EXECUTIONS)
    cancel = client.post(EXECUTIONS, {"action": "cancel_executions", "_selected_action": [history["queued"].pk]})

    assert listing.status_code == 302
    assert listing["Location"] == f"/admin/login/?next={EXECUTIONS}"
    assert cancel.status_code == 302
    history["queued"].refresh_from_db()
    assert history["queued"].status == S.QUEUED


def test_it_shows_operators_the_traceback_of_a_crashed_process(as_admin: Client, operator: Actor) -> None:
    execution = services.execution_start(process_id="test-echo", parameters={"text": "x"}, source="cli",
                                         actor=operator)
    Execution.objects.filter(pk=execution.pk).update(status="running", lease="L1")
    execution.refresh_from_db()
    services.execution_transition(execution=execution, to="failed", message="Failed at step 1/2: KeyError: 'x'",
                                  expect_lease="L1", event_data={"code": "process_error",
                                                                 "traceback": "Traceback (most recent call last):\n"
                                                                              "  File \"shop.py\", line 7\nKeyError"})

    response = as_admin.get(change_url(execution))

    assert "Traceback (most recent call last):\n  File &quot;shop.py&quot;, line 7\nKeyError" in response.text


def test_it_shows_only_the_last_200_events_of_a_long_execution(as_admin: Client, operator: Actor) -> None:
    execution = services.execution_start(process_id="test-echo", parameters={"text": "x"}, source="cli",
                                         actor=operator)
    ExecutionEvent.objects.bulk_create(
        [ExecutionEvent(execution=execution, kind="log", message=f"line {n}") for n in range(1, 251)])

    response = as_admin.get(change_url(execution))

    assert f"The last 200 of 251 events; all of them: <code>manage.py show_execution {execution.public_id}</code>" \
        in response.text
    assert "<td>line 250</td>" in response.text
    assert "<td>line 51</td>" in response.text
    assert "<td>line 50</td>" not in response.text


def test_a_staff_member_sees_only_the_executions_they_may_see(client: Client, operator: Actor) -> None:
    viewer = User.objects.create_user("vera", password="pw-vera-123", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_execution"))
    echo = Process.objects.get(slug="test-echo")
    own = services.execution_start(process_id="test-echo", parameters={"text": "mine"}, source="cli",
                                   actor=Actor.system("cli:x"))
    Execution.objects.filter(pk=own.pk).update(actor_user=viewer)
    others = services.execution_start(process_id="order-processing",
                                      parameters={"orderId": "ORD-2024-001", "priority": "Low"}, source="cli",
                                      actor=operator)
    client.force_login(viewer)

    assert listed(client.get(EXECUTIONS)) == {own.public_id}
    assert client.get(change_url(others)).status_code in (302, 403, 404)

    assign_perm("executions.view_process_executions", viewer, Process.objects.get(slug="order-processing"))
    assert listed(client.get(EXECUTIONS)) == {own.public_id, others.public_id}
    assert echo.is_registered
