"""The conversation engine, as a person chatting would see it (no worker: executions stay queued)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from guardian.shortcuts import assign_perm

from chat_app.models import ChatIdentity, Conversation, ConversationState, LinkCode, Message
from chat_app.services import link_code_create, requests_expire
from executions import hooks
from executions.models import Execution, ExecutionStatus, Process
from tests.chat_app.conftest import Clock, Person

pytestmark = pytest.mark.django_db
CONFIRM = "Confirmation needed. Type 'confirm' to proceed or 'cancel' to stop (I'll wait 5 minutes)."


@pytest.fixture
def reporter(db: None) -> User:
    """Rita may start every demo process (Staff only has order-processing)."""
    user = User.objects.create_user("rita", "rita@example.com", "pw")
    for process in Process.objects.filter(slug__in=["order-processing", "report-generation", "data-sync",
                                                    "monthly-report", "failure-demo"]):
        assign_perm("executions.execute_process", user, process)
    return user


@pytest.fixture
def rita(reporter: User) -> Person:
    return Person(user=reporter)


# --- Starting with everything given ---------------------------------------------------------------------


def test_the_product_example_confirms_and_then_starts_the_order(sam: Person) -> None:
    assert sam.says("process order ORD-2024-001 as high priority") == [
        f"Order Processing: Order ID ORD-2024-001, Priority High.\n{CONFIRM}"]
    assert sam.buttons() == ["Confirm", "Cancel"]
    assert Execution.objects.count() == 0

    [answer] = sam.says("confirm")

    execution = Execution.objects.get()
    assert answer == (f"Order Processing started (ID: {execution.public_id}).\n"
                      "You'll receive updates as the process progresses.")
    assert sam.last.execution_id == execution.public_id
    assert (execution.process.slug, execution.parameters, execution.source) == (
        "order-processing", {"orderId": "ORD-2024-001", "priority": "High"}, "chat")
    assert execution.actor_user == sam.user
    assert Conversation.objects.get().state == ConversationState.IDLE


@pytest.mark.parametrize("word", ["yes", "ok", "Confirm", "y"])
def test_yes_words_confirm(sam: Person, word: str) -> None:
    sam.says("process order ORD-2024-001 as high priority")
    sam.says(word)
    assert Execution.objects.count() == 1


def test_the_confirm_button_starts_it_once_even_when_pressed_twice(sam: Person) -> None:
    sam.says("process order ORD-2024-001 high")
    first = sam.last
    sam.presses("Confirm")
    sam.last = first
    [again] = sam.presses("Confirm")

    assert Execution.objects.count() == 1
    assert again == "There is nothing to confirm right now. Say \"help\" to see what I can do."


def test_cancel_stops_and_nothing_is_started(sam: Person) -> None:
    sam.says("process order ORD-2024-001 as high priority")
    assert sam.presses("Cancel") == ["Cancelled Order Processing. Nothing was started."]
    assert sam.says("confirm") == ["There is nothing to confirm right now. Say \"help\" to see what I can do."]
    assert Execution.objects.count() == 0


def test_a_change_before_confirming_is_taken_and_confirmed_again(sam: Person) -> None:
    sam.says("process order ORD-2024-001 as high priority")
    assert sam.says("make it low") == [f"Order Processing: Order ID ORD-2024-001, Priority Low.\n{CONFIRM}"]


# --- Asking for what is missing -------------------------------------------------------------------------


def test_missing_parameters_are_asked_one_at_a_time_in_the_forms_order(sam: Person) -> None:
    assert sam.says("proces ordr") == ["What is the Order ID? (for example ORD-2024-001)"]
    assert sam.says("ORD-2024-001") == ["Which Priority?"]
    assert sam.buttons() == ["Low", "Medium", "High"]
    assert sam.says("hgih") == [f"Order Processing: Order ID ORD-2024-001, Priority High.\n{CONFIRM}"]


def test_a_bad_answer_is_asked_again_with_the_rules_message(sam: Person) -> None:
    sam.says("process order")
    assert sam.says("ORD-1") == [
        "Ensure this value has at least 10 characters (it has 5).\nWhat is the Order ID? (for example ORD-2024-001)"]
    assert sam.says("XYZ-2024-0001") == ['Must start with "ORD-".\nWhat is the Order ID? (for example ORD-2024-001)']
    assert sam.says("ORD-2024-001") == ["Which Priority?"]
    assert sam.says("urgent") == [
        "Select a valid choice. urgent is not one of the available choices.\nWhich Priority?"]
    assert Execution.objects.count() == 0


def test_an_invalid_value_in_the_command_is_asked_for_with_its_message(sam: Person) -> None:
    assert sam.says("process order ORD-1 as high priority") == [
        "Ensure this value has at least 10 characters (it has 5).\nWhat is the Order ID? (for example ORD-2024-001)"]
    assert sam.says("ORD-2024-001") == [f"Order Processing: Order ID ORD-2024-001, Priority High.\n{CONFIRM}"]


def test_the_context_is_kept_across_questions_period_then_breakdown_then_region(rita: Person) -> None:
    assert rita.says("generate report") == ["Which Period?"]
    assert rita.buttons() == ["This month", "Last month", "Custom"]
    assert rita.says("this month") == ["Include regional breakdown?"]
    assert rita.buttons() == ["Yes", "No"]
    assert rita.says("yes, for EMEA") == [
        "Report Generation: Report Sales, Period This month, Include regional breakdown yes, Region EMEA.\n"
        + CONFIRM]
    rita.says("confirm")
    assert Execution.objects.get().parameters == {"reportType": "Sales", "period": "This month",
                                                  "regionalBreakdown": True, "region": "EMEA"}


def test_dates_in_words_become_the_fields_format(rita: Person) -> None:
    rita.says("submit monthly report for sales")
    assert rita.says("last month") == ["Revenue? (a number)"]
    assert rita.says("$45,000") == [
        f"Monthly Report Submission: Month Selection "
        f"{(timezone.localdate().replace(day=1) - timedelta(days=1)).strftime('%Y-%m')}, Revenue 45000, "
        f"Department Sales.\n{CONFIRM}"]


def test_a_custom_period_asks_for_its_dates(rita: Person) -> None:
    rita.says("generate report custom period")
    assert rita.says("2024-01-01") == ["To? (a date such as 2024-11-03, or words like \"yesterday\")"]
    assert rita.says("not a date") == [
        "Enter a valid date.\nTo? (a date such as 2024-11-03, or words like \"yesterday\")"]


def test_cancel_while_asking_stops(sam: Person) -> None:
    sam.says("process order")
    assert sam.says("cancel") == ["Cancelled Order Processing. Nothing was started."]
    assert Conversation.objects.get().state == ConversationState.IDLE


def test_a_new_command_while_asking_replaces_the_question(rita: Person) -> None:
    rita.says("process order")
    assert rita.says("sync data with erp system") == [f"Data Sync: System ERP, Direction Both.\n{CONFIRM}"]


# --- Confirmation rules ---------------------------------------------------------------------------------


def test_without_always_confirm_a_plain_process_starts_at_once(sam: Person, settings: Any) -> None:
    settings.HEPTORA_CHAT_ALWAYS_CONFIRM = False
    [answer] = sam.says("process order ORD-2024-001 as high priority")
    assert answer.startswith("Order Processing started (ID: exec-")


def test_a_critical_process_always_confirms(sam: Person, settings: Any) -> None:
    settings.HEPTORA_CHAT_ALWAYS_CONFIRM = False
    Process.objects.filter(slug="order-processing").update(critical=True)
    assert sam.says("process order ORD-2024-001 as high priority") == [
        f"Order Processing: Order ID ORD-2024-001, Priority High.\n{CONFIRM}"]
    assert Execution.objects.count() == 0


def test_no_answer_within_five_minutes_cancels_the_request(sam: Person, clock: Clock) -> None:
    sam.says("process order ORD-2024-001 as high priority")
    clock.advance(minutes=5, seconds=1)

    assert sam.says("confirm") == [
        "Cancelled Order Processing: no answer within 5 minutes. Nothing was started.",
        "There is nothing to confirm right now. Say \"help\" to see what I can do.",
    ]
    assert Execution.objects.count() == 0


def test_an_answer_just_in_time_still_starts(sam: Person, clock: Clock) -> None:
    sam.says("process order ORD-2024-001 as high priority")
    clock.advance(minutes=4, seconds=59)
    sam.says("confirm")
    assert Execution.objects.count() == 1


def test_the_periodic_sweep_tells_the_conversation_its_request_expired(
    sam: Person, clock: Clock, settings: Any
) -> None:
    settings.HEPTORA_CHAT_CONFIRM_TIMEOUT = 60
    sam.says("process order ORD-2024-001 as high priority")
    assert requests_expire() == []
    clock.advance(seconds=61)

    assert requests_expire() == [sam.conversation_id]

    assert Message.objects.filter(pushed=True).get().text == (
        "Cancelled Order Processing: no answer within 1 minute. Nothing was started.")
    assert sam.says("confirm") == ["There is nothing to confirm right now. Say \"help\" to see what I can do."]


# --- Who may do what ------------------------------------------------------------------------------------


def test_a_person_without_permission_is_refused_and_nothing_starts(outsider: User) -> None:
    olga = Person(user=outsider)
    assert olga.says("process order ORD-2024-001 as high priority") == [
        "You are not allowed to start Order Processing. Ask an administrator for access."]
    assert Execution.objects.count() == 0
    assert Conversation.objects.get().state == ConversationState.IDLE


def test_permission_withdrawn_before_confirming_is_refused(sam: Person) -> None:
    sam.says("process order ORD-2024-001 as high priority")
    sam.user.groups.clear()
    sam.user = User.objects.get(pk=sam.user.pk)  # a fresh request: no cached permissions
    assert sam.says("confirm") == ["You are not allowed to start Order Processing. Ask an administrator for access."]
    assert Execution.objects.count() == 0


def test_an_unlinked_chat_identity_is_told_how_to_link_and_can_link(sam: Person) -> None:
    stranger = Person(channel="telegram", identity="4242")
    assert stranger.says("process order ORD-2024-001 as high priority") == [
        "I don't know who you are in Heptora yet. To link this telegram account: sign in to Heptora, open "
        "/chat/link/, get a one-time code and send it here as \"link <code>\"."]
    code, _expires = link_code_create(user=sam.user)

    assert stranger.says(f"link {code.lower()}") == [
        "Linked: this telegram account now acts as sam in Heptora. Say \"help\" to begin."]
    stranger.says("process order ORD-2024-001 as high priority")
    stranger.says("confirm")

    execution = Execution.objects.get()
    assert (execution.actor_user, execution.actor_kind, execution.actor_ref) == (sam.user, "chat", "telegram:4242")
    assert stranger.says(f"link {code}") == ["This telegram account is already linked to sam."]


def test_a_link_code_works_once_and_wrong_codes_lock_the_identity(sam: Person, clock: Clock) -> None:
    code, _ = link_code_create(user=sam.user)
    first, second = Person(channel="slack", identity="U1"), Person(channel="slack", identity="U2")
    first.says(f"link {code}")
    assert second.says(f"link {code}") == [
        "That code is not valid or has expired. Get a new one at /chat/link/ and send \"link <code>\"."]
    for _ in range(4):
        second.says("link ZZZZ-ZZZZ")
    fresh, _ = link_code_create(user=sam.user)
    assert second.says(f"link {fresh}") == [
        "Too many wrong codes. Wait 15 minutes, then try a new code from /chat/link/."]
    clock.advance(minutes=16)
    fresh, _ = link_code_create(user=sam.user)
    assert second.says(f"link {fresh}")[0].startswith("Linked:")


def test_an_expired_link_code_does_not_link(sam: Person, clock: Clock) -> None:
    code, _ = link_code_create(user=sam.user)
    clock.advance(minutes=11)
    Person(channel="teams", identity="T1").says(f"link {code}")
    assert ChatIdentity.objects.get(channel="teams").user is None
    assert LinkCode.objects.get().used_at is None


@pytest.fixture
def approval_for_chat() -> Iterator[None]:
    def gate(*, source: str, **kwargs: Any) -> bool:
        return source == "chat"

    hooks.register_approval_gate(gate)
    yield
    hooks.unregister_approval_gate(gate)


def test_a_start_that_needs_approval_says_so(sam: Person, approval_for_chat: None) -> None:
    sam.says("process order ORD-2024-001 as high priority")
    [answer] = sam.says("confirm")
    execution = Execution.objects.get()
    assert execution.status == ExecutionStatus.AWAITING_APPROVAL
    assert answer == (f"Order Processing needs approval before it runs (ID: {execution.public_id}). "
                      "I'll tell you when it starts.")


# --- Built-in commands ----------------------------------------------------------------------------------


def test_help_lists_what_the_person_may_start(sam: Person) -> None:
    [answer] = sam.says("help")
    assert answer.startswith("I can start processes and tell you how they go. Try:\n"
                             "• Order Processing: \"process order ORD-2024-001 as high priority\"\n")
    assert "Report Generation" not in answer  # Sam may not start it
    assert sam.buttons()[0] == "process order ORD-2024-001 as high priority"


def test_status_of_an_execution_and_of_one_that_is_not_yours(sam: Person, rita: Person) -> None:
    sam.says("process order ORD-2024-001 as high priority")
    sam.says("confirm")
    execution = Execution.objects.get()

    assert sam.says(f"check process status {execution.public_id}") == [
        f"{execution.public_id} (Order Processing): Queued."]
    assert sam.buttons() == ["Cancel it"]
    assert rita.says(f"status {execution.public_id}") == [
        f"I can't find {execution.public_id} among the executions you may see."]
    assert sam.says("status exec-98765") == ["I can't find exec-98765 among the executions you may see."]


def test_status_of_a_finished_execution_shows_its_result_or_its_error(sam: Person) -> None:
    sam.says("process order ORD-2024-001 as high priority")
    sam.says("confirm")
    execution = Execution.objects.get()
    now = timezone.now()
    Execution.objects.filter(pk=execution.pk).update(
        status="failed", started_at=now - timedelta(seconds=3), finished_at=now, error_step=3,
        error_message="Card declined.")
    assert sam.says(f"status {execution.public_id}") == [
        f"{execution.public_id} (Order Processing): Failed in 3.0 s.\nError at step 3/5: Card declined."]
    assert sam.buttons() == ["Retry"]


def test_recent_executions_are_the_persons_own_newest_first(sam: Person, rita: Person) -> None:
    assert sam.says("show me recent executions") == ["You have no executions yet. Say \"help\" to start one."]
    for order in ("ORD-2024-001", "ORD-2024-002"):
        sam.says(f"process order {order} high")
        sam.says("confirm")
    rita.says("sync data with erp system")
    rita.says("confirm")
    first, second = Execution.objects.filter(process__slug="order-processing").order_by("id")

    assert sam.says("show me recent executions") == [
        f"Your recent executions:\n• {second.public_id} Order Processing: Queued (just now)\n"
        f"• {first.public_id} Order Processing: Queued (just now)"]


def test_cancel_an_execution_from_chat(sam: Person) -> None:
    sam.says("process order ORD-2024-001 high")
    sam.says("confirm")
    execution = Execution.objects.get()
    assert sam.says(f"cancel {execution.public_id}") == [f"Cancelled {execution.public_id} (Order Processing)."]
    assert sam.says(f"cancel {execution.public_id}") == [
        f"{execution.public_id} has already finished (cancelled); there is nothing to cancel."]


def test_retry_a_failed_execution_from_its_button(sam: Person) -> None:
    sam.says("process order ORD-2024-001 high")
    sam.says("confirm")
    execution = Execution.objects.get()
    Execution.objects.filter(pk=execution.pk).update(status="failed", error_message="x")
    sam.says(f"status {execution.public_id}")
    [answer] = sam.presses("Retry")
    retry = Execution.objects.exclude(pk=execution.pk).get()
    assert retry.retry_of == execution
    assert answer.startswith(f"Order Processing started (ID: {retry.public_id}).")


# --- Not sure, or not understood ------------------------------------------------------------------------


def test_below_the_threshold_it_asks_did_you_mean_and_the_choice_keeps_the_words(rita: Person) -> None:
    assert rita.says("report for last month") == ["Did you mean Report Generation or Monthly Report Submission?"]
    assert rita.buttons() == ["Report Generation", "Monthly Report Submission"]
    assert Execution.objects.count() == 0

    assert rita.presses("Monthly Report Submission") == ["Revenue? (a number)"]
    assert Conversation.objects.get().parameters == {
        "month": (timezone.localdate().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")}


def test_did_you_mean_offers_only_processes_the_person_may_start(sam: Person) -> None:
    [answer] = sam.says("report for last month")  # Sam may start neither report
    assert answer.startswith("Sorry, I didn't understand \"report for last month\".")
    assert "Report" not in " ".join(sam.buttons())


def test_unknown_input_gets_suggestions_never_silence(sam: Person) -> None:
    assert sam.says("tell me a joke") == [
        "Sorry, I didn't understand \"tell me a joke\". You could say:\n"
        "• process order ORD-2024-001 as high priority\nSay \"help\" for everything I can do."]
    assert sam.buttons() == ["process order ORD-2024-001 as high priority", "Help"]
    assert sam.says("confirm") == ["There is nothing to confirm right now. Say \"help\" to see what I can do."]
    assert sam.says("   ") == sam.says("help")


def test_what_the_bot_understood_is_kept_beside_the_message(sam: Person) -> None:
    sam.says("proces ordr ORD-2024-001 high")
    note = Message.objects.get(text="proces ordr ORD-2024-001 high").note
    assert note.startswith("start: 'process order ORD-2024-001' matched 1.00")
    assert "orderId from 'ORD-2024-001' (pattern ^ORD-)" in note
    assert "priority from 'high' (choice)" in note


def test_the_conversation_state_lives_in_the_database(sam: Person) -> None:
    sam.says("process order")
    conversation = Conversation.objects.get()
    assert (conversation.state, conversation.process.slug, conversation.asking) == (
        ConversationState.COLLECTING, "order-processing", "orderId")
    # Another web process (a fresh Person object, same conversation) goes on where this one stopped.
    other = Person(user=sam.user)
    other.conversation_id = sam.conversation_id
    assert other.says("ORD-2024-001") == ["Which Priority?"]
