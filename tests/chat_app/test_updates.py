"""Updates pushed into the conversation while the execution runs (the lifecycle subscriber), without a worker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chat_app.channels import Channel, channel_register
from chat_app.models import Message
from chat_app.services import message_push
from executions import services
from executions.engine import ExecutionContext
from executions.models import Execution
from tests.chat_app.conftest import Clock, Person

pytestmark = pytest.mark.django_db


def pushed(execution: Execution) -> list[str]:
    return list(Message.objects.filter(pushed=True, execution=execution).order_by("id").values_list("text", flat=True))


def test_started_milestones_every_30_seconds_and_completion(
    sam: Person, clock: Clock, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    sam.says("process order ORD-2024-001 as high priority")
    sam.says("confirm")
    execution = Execution.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        claimed = services.execution_claim(execution_pk=execution.pk, lease="lease-1", worker="test:1")
    ctx = ExecutionContext(claimed)

    def step(name: str) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            ctx.step(name)

    step("Validating order")  # nothing finished yet
    step("Checking inventory")  # step 1 done: said
    clock.advance(seconds=10)
    step("Charging payment")  # step 2 done, 10 s later: too soon
    clock.advance(seconds=25)
    step("Fulfilling order")  # step 3 done, 35 s after the last update: said
    clock.advance(seconds=5)
    step("Sending confirmation")
    clock.advance(seconds=2)
    with django_capture_on_commit_callbacks(execute=True):
        services.execution_transition(execution=claimed, to="success", expect_lease="lease-1", message="done",
                                      result={"summary": "Order ORD-2024-001 processed."}, percent=100)

    assert pushed(execution) == [
        f"Order Processing ({execution.public_id}) is running.",
        "Step 1/5 completed (20%).",
        "Step 3/5 completed (60%).",
        f"Order Processing completed in 42.0 s ({execution.public_id}).\nOrder ORD-2024-001 processed.",
    ]


def test_a_failure_says_the_step_and_the_error_and_offers_a_retry(
    admin_user: Any, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    ada = Person(user=admin_user)
    ada.says("run the failure demo")
    ada.says("confirm")
    execution = Execution.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        claimed = services.execution_claim(execution_pk=execution.pk, lease="l", worker="test:1")
        ctx = ExecutionContext(claimed)
        for name in ("Connecting", "Reading input", "Calling payment gateway"):
            ctx.step(name)
        claimed.refresh_from_db()
        services.execution_transition(execution=claimed, to="failed", expect_lease="l", message="Failed",
                                      error_code="gateway_declined", error_message="The gateway declined.",
                                      error_step=3)

    last = Message.objects.filter(pushed=True).last()
    assert last.text == (f"Failure Demo failed at step 3/4 (Calling payment gateway) ({execution.public_id}): "
                         "The gateway declined.")
    assert last.buttons == [{"label": "Retry", "value": f"retry {execution.public_id}"}]
    ada.says(action=f"retry {execution.public_id}")
    assert Execution.objects.filter(retry_of=execution).count() == 1


def test_executions_not_started_from_chat_say_nothing(
    operator: Any, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        execution = services.execution_start(process_id="test-echo", parameters={"text": "hi"}, source="cli",
                                             actor=operator)
        services.execution_cancel(execution=execution, actor=operator)
    assert Message.objects.count() == 0


class Recorder(Channel):
    name = "recorder"

    def __init__(self) -> None:
        self.delivered: list[str] = []
        self.fail = False

    def deliver(self, *, conversation: Any, messages: list[Message]) -> None:
        if self.fail:
            raise ConnectionError("platform down")
        self.delivered += [m.text for m in messages]


def test_pushed_messages_go_out_through_their_channels_adapter(
    sam: Person, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    recorder = Recorder()
    channel_register(recorder)
    from chat_app import tasks

    monkeypatch.setattr(tasks.deliver_message, "apply_async",
                        lambda args, **kwargs: tasks.services.message_deliver(message_pk=args[0]))
    person = Person(channel="recorder", identity="R1")
    person.says("hello")
    conversation = Message.objects.filter(conversation__identity__channel="recorder").first().conversation
    with django_capture_on_commit_callbacks(execute=True):
        message = message_push(conversation=conversation, text="Step 1/5 completed (20%).")

    assert recorder.delivered == ["Step 1/5 completed (20%)."]
    message.refresh_from_db()
    assert message.delivered_at is not None and message.delivery_attempts == 1

    recorder.fail = True  # the platform is down: the pusher is not affected; the task retries later
    with django_capture_on_commit_callbacks(execute=True):
        message_push(conversation=conversation, text="later")
    later = Message.objects.get(text="later")
    assert (later.delivered_at, later.delivery_attempts) == (None, 1)


def test_a_pushed_message_whose_delivery_was_lost_is_handed_to_delivery_again(
    sam: Person, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The broker was down when the update was saved, or the worker holding its task was killed: no task
    # will ever deliver it, and the periodic redelivery must.
    recorder = Recorder()
    channel_register(recorder)
    from chat_app import tasks
    from chat_app.services import messages_redeliver_due

    handed: list[int] = []
    monkeypatch.setattr(tasks.deliver_message, "apply_async", lambda args, **kwargs: handed.append(args[0]))
    Person(channel="recorder", identity="R2").says("hello")
    conversation = Message.objects.filter(conversation__identity__external_id="R2").first().conversation
    lost = message_push(conversation=conversation, text="Step 2/5 completed (40%).")  # its task never runs
    sam.says("hello")  # on the web chat
    web = message_push(conversation=Message.objects.filter(conversation__identity__channel="web").first().conversation,
                       text="the web page polls for this one")
    handed.clear()

    clock.advance(seconds=60)
    assert messages_redeliver_due() == []  # its own task may still be on its way

    clock.advance(seconds=90)
    assert messages_redeliver_due() == [lost.pk]  # not the web chat's message: its page fetches it
    assert web.pk not in handed
    tasks.services.message_deliver(message_pk=lost.pk)
    assert recorder.delivered[-1] == "Step 2/5 completed (40%)."

    clock.advance(hours=1)
    assert messages_redeliver_due() == []  # delivered: nothing more to do


def test_a_pushed_message_being_retried_is_not_handed_twice_and_one_out_of_tries_is_left(
    sam: Person, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chat_app import tasks
    from chat_app.services import MESSAGE_MAX_ATTEMPTS, messages_redeliver_due

    recorder = Recorder()
    recorder.fail = True
    channel_register(recorder)
    monkeypatch.setattr(tasks.deliver_message, "apply_async", lambda args, **kwargs: None)
    Person(channel="recorder", identity="R3").says("hello")
    conversation = Message.objects.filter(conversation__identity__external_id="R3").first().conversation
    message = message_push(conversation=conversation, text="Completed.")
    with pytest.raises(ConnectionError):
        tasks.services.message_deliver(message_pk=message.pk)  # the first try fails; its retry is due later

    clock.advance(minutes=2)
    assert messages_redeliver_due() == []  # the task's own retry (at most 160 s away) may still come
    clock.advance(minutes=2)
    assert messages_redeliver_due() == [message.pk]  # that retry was lost with its worker
    assert messages_redeliver_due() == []  # handed out once: the next sweeps wait for that copy

    Message.objects.filter(pk=message.pk).update(delivery_attempts=MESSAGE_MAX_ATTEMPTS)
    clock.advance(minutes=10)
    assert messages_redeliver_due() == []  # out of tries: the task has given up, and so does redelivery
    recorder.fail = False
    assert tasks.services.message_deliver(message_pk=message.pk) is False  # and a late copy does nothing
    assert recorder.delivered == []


def test_an_update_older_than_an_hour_is_not_sent_late(sam: Person, clock: Clock,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from chat_app import tasks
    from chat_app.services import messages_redeliver_due

    channel_register(Recorder())
    monkeypatch.setattr(tasks.deliver_message, "apply_async", lambda args, **kwargs: None)
    Person(channel="recorder", identity="R4").says("hello")
    conversation = Message.objects.filter(conversation__identity__external_id="R4").first().conversation
    message_push(conversation=conversation, text="Step 1/5 completed (20%).")

    clock.advance(minutes=61)
    assert messages_redeliver_due() == []


def test_two_copies_of_a_delivery_at_the_same_moment_send_the_message_once(
    sam: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chat_app import tasks

    monkeypatch.setattr(tasks.deliver_message, "apply_async", lambda args, **kwargs: None)
    sent: list[str] = []

    class Racing(Channel):
        # While the first copy is in the platform's call, the second copy (a retry, a redelivery) starts.
        name = "racing"

        def deliver(self, *, conversation: Any, messages: list[Message]) -> None:
            assert tasks.services.message_deliver(message_pk=messages[0].pk) is False
            sent.extend(m.text for m in messages)

    channel_register(Racing())
    Person(channel="racing", identity="R5").says("hello")
    conversation = Message.objects.filter(conversation__identity__external_id="R5").first().conversation
    message = message_push(conversation=conversation, text="Completed.")

    assert tasks.services.message_deliver(message_pk=message.pk) is True
    assert sent == ["Completed."]
    message.refresh_from_db()
    assert message.delivery_attempts == 1 and message.delivered_at is not None


def test_a_copy_of_the_delivery_that_runs_more_than_an_hour_late_sends_nothing(
    sam: Person, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chat_app import tasks

    recorder = Recorder()
    channel_register(recorder)
    monkeypatch.setattr(tasks.deliver_message, "apply_async", lambda args, **kwargs: None)
    Person(channel="recorder", identity="R6").says("hello")
    conversation = Message.objects.filter(conversation__identity__external_id="R6").first().conversation
    message = message_push(conversation=conversation, text="Step 1/5 completed (20%).")

    clock.advance(minutes=61)  # its task waited behind a long backlog
    assert tasks.services.message_deliver(message_pk=message.pk) is False
    assert recorder.delivered == []
