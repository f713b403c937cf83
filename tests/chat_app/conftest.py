"""Shared pieces of the chat tests: talking to the engine as a web user or as an external chat identity."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import timezone

from chat_app.channels import ChatMessage, ChatReply
from chat_app.services import conversation_handle, web_identity


class Person:
    """Someone chatting: a signed-in web user (``user``) or an identity on another channel."""

    def __init__(self, *, user: Any = None, channel: str = "web", identity: str = "") -> None:
        self.user, self.channel = user, channel
        self.identity = identity or (web_identity(user) if user is not None else "")
        self.conversation_id: str | None = None
        self.last: ChatReply | None = None

    def says(self, text: str = "", *, action: str = "") -> list[str]:
        """Send a message (or press a button) in this person's conversation; the bot's answers as text."""
        reply = conversation_handle(message=ChatMessage(
            channel=self.channel, identity=self.identity, text=text, action=action,
            conversation_id=self.conversation_id, user=self.user if self.channel == "web" else None,
            thread=None if self.conversation_id else "main",
        ))
        self.conversation_id = reply.conversation_id
        self.last = reply
        return [m.text for m in reply.messages]

    def presses(self, label: str) -> list[str]:
        assert self.last is not None, "nothing was said yet"
        for message in self.last.messages:
            for button in message.buttons:
                if button.label == label:
                    return self.says(action=button.value)
        raise AssertionError(f"no button {label!r} in {[b.label for m in self.last.messages for b in m.buttons]}")

    def buttons(self) -> list[str]:
        assert self.last is not None
        return [b.label for m in self.last.messages for b in m.buttons]


@pytest.fixture(autouse=True)
def fresh_rate_limits(db: None) -> None:
    cache.clear()


@pytest.fixture
def sam(staff_user: Any) -> Person:
    """Sam (Staff) on the web chat: may start order-processing and the test processes."""
    return Person(user=staff_user)


class Clock:
    def __init__(self) -> None:
        self.now: datetime = timezone.now()

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Time travel: everything that asks django.utils.timezone.now() gets the clock's time."""
    clock = Clock()
    monkeypatch.setattr("django.utils.timezone.now", lambda: clock.now)
    return clock
