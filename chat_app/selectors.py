"""Reads of the chat app: the processes chat knows, a person's conversations and their new messages."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from chat_app.errors import ConversationNotFound
from chat_app.models import Conversation, Message, ProcessChatConfig, Sender
from chat_app.understanding import ProcessEntry
from executions import registry
from executions.models import Process
from forms_app.parameters import fields_for


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def chat_catalog() -> list[ProcessEntry]:
    """Every runnable process with the phrases that name it (code, name, id, admin phrases and examples)."""
    configs = {c.process_id: c for c in ProcessChatConfig.objects.all()}
    entries = []
    for process in Process.objects.filter(is_registered=True).order_by("slug"):
        definition = registry.get(process.slug)
        if definition is None:
            continue
        config = configs.get(process.pk)
        phrases = [process.name, process.slug.replace("-", " ")]
        if config is None or config.use_code_phrases:
            phrases += list(definition.chat_phrases)
        examples = _lines(config.examples) if config else []
        if config:
            phrases += _lines(config.phrases) + examples
        ask = [n.strip() for n in config.ask_fields.split(",") if n.strip()] if config else []
        entries.append(ProcessEntry(
            slug=process.slug, name=process.name, phrases=tuple(dict.fromkeys(phrases)),
            fields=tuple(fields_for(process)), examples=tuple(examples or definition.chat_phrases[:1]),
            ask_fields=tuple(ask),
        ))
    return entries


def conversation_of_user(*, conversation_id: str, user: Any) -> Conversation:
    """The conversation if ``user`` owns it; ConversationNotFound otherwise (others' look the same as none)."""
    conversation = Conversation.objects.filter(public_id=conversation_id, identity__user=user).first()
    if conversation is None or user is None:
        raise ConversationNotFound(f"There is no conversation with id '{conversation_id}' that is yours.")
    return conversation


def bot_messages_after(*, conversation: Conversation, after_id: int = 0, limit: int = 200) -> QuerySet[Message]:
    return conversation.messages.filter(sender=Sender.BOT, id__gt=after_id).order_by("id")[:limit]


def message_as_dict(message: Message) -> dict[str, Any]:
    return {"id": message.id, "text": message.text, "buttons": message.buttons}
