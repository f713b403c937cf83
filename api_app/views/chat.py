"""The web chat API: talk to the conversation engine and poll for its updates.

The engine lives in ``chat_app``; these views only authenticate (API key or session, like every endpoint),
validate the body and translate the engine's answer into JSON.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from api_app.callers import SCOPE_EXECUTE
from api_app.permissions import caller_of
from api_app.serializers import StrictSerializer
from api_app.views.base import HeptoraAPIView
from chat_app import selectors, services
from chat_app.channels import ChatMessage

NOT_FOUND = OpenApiResponse(description="No such conversation, or not yours.")
BAD = OpenApiResponse(description="The body or a query parameter is not valid: `error.fields` says which.")


class ButtonOut(serializers.Serializer):
    label = serializers.CharField()
    value = serializers.CharField(help_text="Send it back as `action` when the button is pressed.")


class BotMessageOut(serializers.Serializer):
    id = serializers.IntegerField(help_text="Increasing; poll with `after=<the last id you have>`.")
    text = serializers.CharField()
    buttons = ButtonOut(many=True)


class ChatMessageRequest(StrictSerializer):
    conversationId = serializers.CharField(required=False, max_length=40,
                                           help_text="Continue this conversation; leave out to start a new one.")
    text = serializers.CharField(required=False, max_length=2000, trim_whitespace=True,
                                 help_text='What the person typed, e.g. "process order ORD-2024-001 as high priority".')
    action = serializers.CharField(required=False, max_length=200,
                                   help_text='"confirm", "cancel", or the `value` of a button the bot sent.')

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if bool(data.get("text")) == bool(data.get("action")):
            raise serializers.ValidationError({"text": ["Send either `text` or `action` (exactly one)."]})
        if data.get("action") and not data.get("conversationId"):
            raise serializers.ValidationError({"conversationId": ["An action belongs to a conversation: send its id."]})
        return data


class ChatReplyOut(serializers.Serializer):
    conversationId = serializers.CharField()
    messages = BotMessageOut(many=True)
    executionId = serializers.CharField(required=False, help_text="Present when this message started an execution.")


class ChatMessagesOut(serializers.Serializer):
    conversationId = serializers.CharField()
    messages = BotMessageOut(many=True)


class ChatMessageView(HeptoraAPIView):
    required_scope = SCOPE_EXECUTE

    @extend_schema(
        operation_id="chat_message_send", tags=["chat"], request=ChatMessageRequest,
        responses={200: ChatReplyOut, 400: BAD, 404: NOT_FOUND},
        summary="Say something to Heptora's chat (a command, an answer, or a button's value)",
        description="The bot answers with one or more messages; buttons carry the `action` to send back. "
                    "Updates about executions started here arrive later: poll the conversation's messages.",
        examples=[
            OpenApiExample("A command", value={"text": "process order ORD-2024-001 as high priority"},
                           request_only=True),
            OpenApiExample("Confirm", value={"conversationId": "conv-0123456789abcdef", "action": "confirm"},
                           request_only=True),
        ],
    )
    def post(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise ValidationError({"body": ["The body must be a JSON object."]})
        body = ChatMessageRequest(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        caller = caller_of(request)
        reply = services.conversation_handle(message=ChatMessage(
            channel="web", identity=services.web_identity(request.user), user=request.user,
            text=data.get("text", ""), action=data.get("action", ""), conversation_id=data.get("conversationId"),
            display_name=request.user.get_username(), actor=self.actor,
            allowed_processes=caller.allowed_processes if caller else None,
        ))
        self.execution_id = reply.execution_id or ""
        out: dict[str, Any] = {
            "conversationId": reply.conversation_id,
            "messages": [{"id": m.id, "text": m.text, "buttons": [{"label": b.label, "value": b.value}
                                                                   for b in m.buttons]} for m in reply.messages],
        }
        if reply.execution_id:
            out["executionId"] = reply.execution_id
        return Response(out)


class ChatConversationMessagesView(HeptoraAPIView):
    @extend_schema(
        operation_id="chat_messages_list", tags=["chat"],
        parameters=[OpenApiParameter("after", {"type": "integer", "minimum": 0},
                                     description="Only messages with a larger id (the last id you have).")],
        responses={200: ChatMessagesOut, 400: BAD, 404: NOT_FOUND},
        summary="The bot's messages in a conversation, newer than `after` (progress and completion updates)",
    )
    def get(self, request: Request, conversation_id: str) -> Response:
        after = request.query_params.get("after", "0")
        if not after.isdigit() or len(after) > 18:
            raise ValidationError({"after": ["Use a message id (a whole number)."]})
        conversation = selectors.conversation_of_user(conversation_id=conversation_id, user=request.user)
        messages = selectors.bot_messages_after(conversation=conversation, after_id=int(after))
        return Response({"conversationId": conversation.public_id,
                         "messages": [selectors.message_as_dict(m) for m in messages]})
