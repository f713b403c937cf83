"""The seam between the conversation engine and the chat platforms.

An adapter (web, Slack, Teams, Telegram) only translates:

* inbound: a platform event becomes a :class:`ChatMessage` and goes to
  :func:`chat_app.services.conversation_handle`, which answers with a :class:`ChatReply` (its
  :class:`BotMessage` list is what the adapter sends back in the platform's own format);
* outbound: updates the engine pushes later (progress, completion, a timed-out confirmation) are saved as
  messages and handed, after commit, to the adapter registered for the conversation's channel through
  :meth:`Channel.deliver`. The web channel delivers nothing: its clients poll for new messages.

Adapters register in their ``AppConfig.ready`` with :func:`channel_register`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from executions.actors import Actor

if TYPE_CHECKING:
    from chat_app.models import Conversation, Message


@dataclass(frozen=True)
class Button:
    label: str
    value: str
    """Sent back as the message's ``action`` when pressed (``confirm``, ``cancel``, ``retry exec-…``, …)."""


@dataclass(frozen=True)
class BotMessage:
    text: str
    buttons: tuple[Button, ...] = ()
    id: int | None = None


@dataclass(frozen=True)
class ChatMessage:
    """What a person said, whichever platform it came from.

    ``identity`` is the person's id on ``channel``. Give ``text`` (what they typed) or ``action`` (the value
    of a button they pressed). ``conversation_id`` continues a known conversation (it must belong to this
    identity); otherwise ``thread`` (a platform thread or chat id) picks the identity's conversation there,
    and with neither a new conversation starts.

    Doors that authenticated the person themselves (a web session, an API key) pass ``user`` (the identity is
    then linked by definition) and may pass their own ``actor`` and ``allowed_processes`` (an API key limited
    to some processes).
    """

    channel: str
    identity: str
    text: str = ""
    action: str = ""
    conversation_id: str | None = None
    thread: str | None = None
    display_name: str = ""
    user: object | None = None
    actor: Actor | None = None
    allowed_processes: frozenset[str] | None = None


@dataclass(frozen=True)
class ChatReply:
    conversation_id: str
    messages: list[BotMessage] = field(default_factory=list)
    execution_id: str | None = None


class Channel(ABC):
    """Base class of a platform adapter's outbound side (Slack, Teams and Telegram subclass it)."""

    name = ""

    @abstractmethod
    def deliver(self, *, conversation: Conversation, messages: list[Message]) -> None:
        """Send pushed messages to the platform. Raise to have the delivery retried later."""


class WebChannel(Channel):
    """The web chat and the REST API: clients poll ``GET …/conversations/{id}/messages?after=``."""

    name = "web"

    def deliver(self, *, conversation: Conversation, messages: list[Message]) -> None:
        return None


_channels: dict[str, Channel] = {}


def channel_register(channel: Channel) -> None:
    _channels[channel.name] = channel


def channel_get(name: str) -> Channel | None:
    return _channels.get(name)


def channel_names() -> list[str]:
    return list(_channels)


channel_register(WebChannel())
