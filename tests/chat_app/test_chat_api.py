"""POST /api/v1/chat/messages and GET /api/v1/chat/conversations/{id}/messages: the web chat's contract."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from chat_app.models import Conversation, Message
from chat_app.services import message_push
from executions.models import Execution
from tests.api_app.helpers import error_of, fields_of, integration, signed_in

pytestmark = pytest.mark.django_db
SEND = "/api/v1/chat/messages"


def messages_of(conversation_id: str) -> str:
    return f"/api/v1/chat/conversations/{conversation_id}/messages"


def send(client: Any, body: Any) -> Any:
    return client.post(SEND, body, content_type="application/json")


def test_a_command_then_confirm_starts_an_execution(staff_user: User) -> None:
    client = signed_in(staff_user)

    first = send(client, {"text": "process order ORD-2024-001 as high priority"})

    assert first.status_code == 200
    body = first.json()
    assert body["conversationId"].startswith("conv-")
    [message] = body["messages"]
    assert message["text"].startswith("Order Processing: Order ID ORD-2024-001, Priority High.")
    assert message["buttons"] == [{"label": "Confirm", "value": "confirm"}, {"label": "Cancel", "value": "cancel"}]
    assert isinstance(message["id"], int)
    assert "executionId" not in body

    second = send(client, {"conversationId": body["conversationId"], "action": "confirm"})

    execution = Execution.objects.get()
    assert second.status_code == 200
    assert second.json()["executionId"] == execution.public_id
    assert second.json()["messages"][0]["text"].startswith(f"Order Processing started (ID: {execution.public_id})")
    assert execution.actor_user == staff_user and execution.source == "chat"


def test_polling_returns_only_newer_bot_messages(staff_user: User) -> None:
    client = signed_in(staff_user)
    body = send(client, {"text": "process order ORD-2024-001 as high priority"}).json()
    last_id = body["messages"][-1]["id"]
    conversation = Conversation.objects.get(public_id=body["conversationId"])
    pushed = message_push(conversation=conversation, text="Step 2/5 completed (40%).")

    response = client.get(messages_of(body["conversationId"]), {"after": last_id})

    assert response.status_code == 200
    assert response.json() == {"conversationId": body["conversationId"],
                               "messages": [{"id": pushed.pk, "text": "Step 2/5 completed (40%).", "buttons": []}]}
    everything = client.get(messages_of(body["conversationId"])).json()["messages"]
    assert [m["id"] for m in everything] == [last_id, pushed.pk]  # bot messages only, oldest first


def test_an_integrator_with_an_api_key_can_chat(staff_user: User) -> None:
    client = integration(staff_user)
    body = send(client, {"text": "process order ORD-2024-001 high"}).json()
    send(client, {"conversationId": body["conversationId"], "text": "yes"})
    assert Execution.objects.get().actor_kind == "api_key"


def test_an_api_key_limited_to_other_processes_is_refused(staff_user: User) -> None:
    client = integration(staff_user, processes={"test-echo"})
    body = send(client, {"text": "process order ORD-2024-001 high"}).json()
    assert body["messages"][0]["text"] == (
        "You are not allowed to start Order Processing. Ask an administrator for access.")


def test_a_read_only_token_may_not_send(staff_user: User) -> None:
    response = send(integration(staff_user, scopes={"process:read"}), {"text": "help"})
    assert error_of(response) == (
        403, "permission_denied", "This token lacks the scope 'process:execute' this call needs.")
    assert Message.objects.count() == 0


def test_without_credentials_it_is_401() -> None:
    response = send(Client(HTTP_HOST="localhost"), {"text": "help"})
    assert error_of(response)[:2] == (401, "not_authenticated")
    assert Client(HTTP_HOST="localhost").get(messages_of("conv-x")).status_code == 401


def test_a_session_needs_the_csrf_token(staff_user: User) -> None:
    client = Client(HTTP_HOST="localhost", enforce_csrf_checks=True)
    client.force_login(staff_user)
    response = send(client, {"text": "help"})
    assert response.status_code == 403
    assert Message.objects.count() == 0


def test_someone_elses_conversation_is_404_and_unchanged(staff_user: User, outsider: User) -> None:
    body = send(signed_in(staff_user), {"text": "process order"}).json()
    other = signed_in(outsider)

    posted = send(other, {"conversationId": body["conversationId"], "text": "ORD-2024-001"})
    polled = other.get(messages_of(body["conversationId"]))

    assert error_of(posted) == (404, "conversation_not_found",
                                f"There is no conversation with id '{body['conversationId']}' that is yours.")
    assert error_of(polled)[:2] == (404, "conversation_not_found")
    assert Conversation.objects.get().asking == "orderId"
    assert Message.objects.count() == 2


@pytest.mark.parametrize(("body", "fields"), [
    ({}, {"text": ["Send either `text` or `action` (exactly one)."]}),
    ({"text": "hi", "action": "confirm", "conversationId": "conv-1"},
     {"text": ["Send either `text` or `action` (exactly one)."]}),
    ({"action": "confirm"}, {"conversationId": ["An action belongs to a conversation: send its id."]}),
    ({"text": "x" * 2001}, {"text": ["Ensure this field has no more than 2000 characters."]}),
    ({"text": "help", "conversationID": "conv-1"}, {"conversationID": ["Unknown field."]}),
    ({"text": 5}, None),
    ([1, 2], {"body": ["The body must be a JSON object."]}),
    ({"text": "   "}, {"text": ["This field may not be blank."]}),
])
def test_invalid_bodies_are_400_in_the_api_error_shape(staff_user: User, body: Any, fields: Any) -> None:
    response = send(signed_in(staff_user), body)
    if fields is None:  # DRF accepts a number as text: it is a message like any other
        assert response.status_code == 200
        return
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert fields_of(response) == fields


def test_a_bad_after_is_400(staff_user: User) -> None:
    client = signed_in(staff_user)
    conversation_id = send(client, {"text": "help"}).json()["conversationId"]
    for after in ("abc", "-1", "1" * 30):
        response = client.get(messages_of(conversation_id), {"after": after})
        assert response.status_code == 400, after
        assert fields_of(response) == {"after": ["Use a message id (a whole number)."]}


def test_malformed_json_is_400_not_500(staff_user: User) -> None:
    response = signed_in(staff_user).post(SEND, "{not json", content_type="application/json")
    assert error_of(response)[:2] == (400, "invalid_json")


def test_any_button_value_or_odd_action_gets_an_answer(staff_user: User) -> None:
    client = signed_in(staff_user)
    conversation_id = send(client, {"text": "hello"}).json()["conversationId"]
    for action in ("choose:no-such-process", "retry exec-zzz", "\u2603", "choose:", "cancel exec-"):
        response = send(client, {"conversationId": conversation_id, "action": action})
        assert response.status_code == 200, action
        assert response.json()["messages"], action
    nul = send(client, {"conversationId": conversation_id, "action": "\u0000"})
    assert fields_of(nul) == {"action": ["Null characters are not allowed."]}


def test_both_endpoints_are_in_the_openapi_schema(staff_user: User) -> None:
    schema = Client(HTTP_HOST="localhost").get("/api/schema/?format=json").json()
    send_op = schema["paths"]["/api/v1/chat/messages"]["post"]
    poll_op = schema["paths"]["/api/v1/chat/conversations/{conversation_id}/messages"]["get"]
    assert send_op["operationId"] == "chat_message_send"
    assert set(send_op["responses"]) >= {"200", "400", "401", "403", "404", "429"}
    assert poll_op["operationId"] == "chat_messages_list"
    assert set(poll_op["responses"]) >= {"200", "400", "401", "404"}
    request = schema["components"]["schemas"]["ChatMessageRequestRequest"]
    assert set(request["properties"]) == {"conversationId", "text", "action"}
    reply = schema["components"]["schemas"]["ChatReplyOut"]
    assert set(reply["properties"]) == {"conversationId", "messages", "executionId"}


def test_the_web_chat_conversation_of_a_session_continues_through_the_api(staff_user: User) -> None:
    client = signed_in(staff_user)
    conversation_id = send(client, {"text": "process order"}).json()["conversationId"]
    answer = send(client, {"conversationId": conversation_id, "text": "ORD-2024-001"}).json()
    assert answer["messages"][0]["text"] == "Which Priority?"
    assert Conversation.objects.get().updated_at <= timezone.now()
