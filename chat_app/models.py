"""Chat state, all in the database (never in a process's memory): any web process or worker can go on.

* ``ProcessChatConfig``: per process, the phrases, aliases and examples chat matches (on top of the code's
  ``chat_phrases``), edited in admin.
* ``ChatIdentity``: a person on a channel ("telegram" + chat user id, or "web" + a Heptora user), linked to
  a Heptora account; ``LinkCode``: the one-time code that links an external identity.
* ``Conversation``: one dialogue and where it stands (idle, collecting parameters, waiting for a
  confirmation); ``Message``: what each side said (the web chat polls the bot's messages by id);
  ``ExecutionWatch``: which conversation hears about an execution, and when it last heard of its progress.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

from executions.models import Execution, Process


class ProcessChatConfig(models.Model):
    process = models.OneToOneField(Process, on_delete=models.CASCADE, related_name="chat_config")
    phrases = models.TextField(blank=True, help_text="Phrases and aliases that name this process, one a line.")
    examples = models.TextField(
        blank=True, help_text="Example commands, one a line: matched like phrases and shown in 'help'."
    )
    use_code_phrases = models.BooleanField(
        default=True, help_text="Also match the phrases declared in the process's code (chat_phrases)."
    )
    ask_fields = models.CharField(
        max_length=300, blank=True,
        help_text="Optional parameters chat asks for too (comma-separated names), after the required ones.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "chat phrases of a process"
        verbose_name_plural = "chat phrases of processes"

    def __str__(self) -> str:
        return f"Chat phrases of {self.process.slug}"


class ChatIdentity(models.Model):
    channel = models.CharField(max_length=30, help_text='"web", "slack", "teams", "telegram", …')
    external_id = models.CharField(max_length=200, help_text="The person's id on that channel.")
    display_name = models.CharField(max_length=200, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="chat_identities")
    linked_at = models.DateTimeField(null=True, blank=True)
    failed_link_attempts = models.PositiveIntegerField(default=0)
    link_locked_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name_plural = "chat identities"
        constraints = [models.UniqueConstraint(fields=["channel", "external_id"], name="chat_identity_unique")]

    def __str__(self) -> str:
        return f"{self.channel}:{self.external_id}"


class LinkCode(models.Model):
    """A one-time code shown to a signed-in person; ``link <code>`` on a channel links that identity."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_link_codes")
    code_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(ChatIdentity, null=True, blank=True, on_delete=models.SET_NULL)

    def __str__(self) -> str:
        return f"Link code of {self.user} (expires {self.expires_at:%Y-%m-%d %H:%M})"


def new_conversation_id() -> str:
    return f"conv-{secrets.token_hex(8)}"


class ConversationState(models.TextChoices):
    IDLE = "idle", "Idle"
    COLLECTING = "collecting", "Asking for parameters"
    CONFIRMING = "confirming", "Waiting for confirmation"


class Conversation(models.Model):
    public_id = models.CharField(max_length=40, unique=True, default=new_conversation_id, editable=False)
    identity = models.ForeignKey(ChatIdentity, on_delete=models.CASCADE, related_name="conversations")
    thread = models.CharField(max_length=200, blank=True, help_text="The channel's thread or chat id, if any.")
    state = models.CharField(max_length=20, choices=ConversationState.choices, default=ConversationState.IDLE)
    process = models.ForeignKey(Process, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    parameters = models.JSONField(default=dict, blank=True)
    asking = models.CharField(max_length=100, blank=True, help_text="The parameter the bot asked for.")
    asked = models.JSONField(default=list, blank=True, help_text="Optional parameters already asked.")
    pending_text = models.TextField(blank=True, help_text="The words a 'Did you mean' choice applies to.")
    expires_at = models.DateTimeField(null=True, blank=True, help_text="The pending request is dropped after.")
    last_execution = models.ForeignKey(Execution, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["identity", "thread", "-updated_at"]),
                   models.Index(fields=["state", "expires_at"])]

    def __str__(self) -> str:
        return self.public_id


class Sender(models.TextChoices):
    USER = "user", "Person"
    BOT = "bot", "Heptora"


class Message(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    sender = models.CharField(max_length=10, choices=Sender.choices)
    text = models.TextField()
    buttons = models.JSONField(default=list, blank=True)
    note = models.TextField(blank=True, help_text="How the bot understood a person's message (for operators).")
    execution = models.ForeignKey(Execution, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    pushed = models.BooleanField(default=False, help_text="Sent later (an update), not as the answer to a message.")
    delivered_at = models.DateTimeField(null=True, blank=True, help_text="When a channel adapter delivered it.")
    delivery_attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True,
                                           help_text="When a delivery was last tried or handed to the task again.")
    delivering_until = models.DateTimeField(null=True, blank=True,
                                            help_text="An attempt is under way until then (the attempt's lease).")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["conversation", "id"]),
            # The periodic redelivery reads the last hour's undelivered pushed messages.
            models.Index(fields=["created_at"], condition=models.Q(pushed=True, delivered_at__isnull=True),
                         name="chat_message_undelivered"),
        ]

    def __str__(self) -> str:
        return f"{self.sender}: {self.text[:60]}"


class ExecutionWatch(models.Model):
    execution = models.OneToOneField(Execution, on_delete=models.CASCADE, related_name="chat_watch")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="watches")
    last_step_reported = models.PositiveIntegerField(default=0)
    last_progress_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    def __str__(self) -> str:
        return f"{self.conversation} follows {self.execution}"
