"""The conversation engine: one person's message in, the bot's answers out, whichever channel it came from.

:func:`conversation_handle` is the only entry point for inbound messages. Each message is handled in one
transaction with the conversation's row locked, so two web processes (or a double click) never act on the
same conversation at once and a confirmation starts one execution, not two. Everything the engine remembers
is in the database (``Conversation``); nothing is kept in memory between messages. The dialogue itself is
:class:`chat_app.dialogue.Turn`.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from chat_app import replies
from chat_app.channels import BotMessage, Button, ChatMessage, ChatReply
from chat_app.dialogue import Turn, link_code_hash, pending_minutes
from chat_app.errors import ConversationNotFound
from chat_app.models import ChatIdentity, Conversation, ConversationState, LinkCode, Message, Sender
from executions.models import Execution

logger = logging.getLogger(__name__)
State = ConversationState
LINK_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"




# --- Inbound --------------------------------------------------------------------------------------------


def conversation_handle(*, message: ChatMessage) -> ChatReply:
    """Handle one message from a person and return the bot's answers (saved, with their ids)."""
    text = (message.action or message.text or "").strip()[:2000]
    identity = identity_resolve(channel=message.channel, external_id=message.identity, user=message.user,
                                display_name=message.display_name)
    with transaction.atomic():
        conversation = _conversation_for(identity, message)
        turn = Turn(conversation=conversation, identity=identity, message=message, now=timezone.now())
        said = Message.objects.create(conversation=conversation, sender=Sender.USER, text=text or "(empty)")
        turn.run(text, is_action=bool(message.action))
        if turn.explanation:
            Message.objects.filter(pk=said.pk).update(note=turn.explanation[:2000])
        saved = [Message.objects.create(conversation=conversation, sender=Sender.BOT, text=m.text,
                                        buttons=[{"label": b.label, "value": b.value} for b in m.buttons],
                                        execution=turn.execution)
                 for m in turn.replies]
        conversation.save()
    return ChatReply(
        conversation_id=conversation.public_id,
        messages=[BotMessage(text=m.text, buttons=tuple(Button(**b) for b in m.buttons), id=m.pk) for m in saved],
        execution_id=turn.execution.public_id if turn.execution else None,
    )


def identity_resolve(*, channel: str, external_id: str, user: Any = None, display_name: str = "") -> ChatIdentity:
    """The person on ``channel``; a door that signed them in (``user``) links the identity by definition."""
    identity, created = ChatIdentity.objects.get_or_create(
        channel=channel[:30], external_id=external_id[:200],
        defaults={"user": user, "display_name": display_name[:200], "linked_at": timezone.now() if user else None},
    )
    if not created and user is not None and identity.user_id != user.pk:
        identity.user, identity.linked_at = user, timezone.now()
        identity.save(update_fields=["user", "linked_at"])
    return identity


def web_identity(user: Any) -> str:
    """The ``identity`` of a signed-in person on the web channel (session or API key acting for them)."""
    return f"user:{user.pk}"


def _conversation_for(identity: ChatIdentity, message: ChatMessage) -> Conversation:
    if message.conversation_id:
        conversation = (Conversation.objects.select_for_update()
                        .filter(public_id=message.conversation_id, identity=identity).first())
        if conversation is None:
            raise ConversationNotFound(f"There is no conversation with id '{message.conversation_id}' that is yours.")
        return conversation
    if message.thread is not None:
        conversation = (Conversation.objects.select_for_update().filter(identity=identity, thread=message.thread)
                        .order_by("-updated_at", "-id").first())
        if conversation is not None:
            return conversation
    return Conversation.objects.create(identity=identity, thread=message.thread or "")


# --- Linking --------------------------------------------------------------------------------------------


def link_code_create(*, user: Any) -> tuple[str, dt.datetime]:
    """A new one-time code that links a chat identity to ``user`` (earlier unused codes stop working)."""
    LinkCode.objects.filter(user=user, used_at__isnull=True).delete()
    raw = "".join(secrets.choice(LINK_ALPHABET) for _ in range(8))
    code = f"{raw[:4]}-{raw[4:]}"
    expires = timezone.now() + timedelta(minutes=settings.HEPTORA_CHAT_LINK_CODE_MINUTES)
    LinkCode.objects.create(user=user, code_hash=link_code_hash(code), expires_at=expires)
    return code, expires


def identity_unlink(*, identity: ChatIdentity) -> None:
    identity.user, identity.linked_at = None, None
    identity.save(update_fields=["user", "linked_at"])


# --- Pushed messages ------------------------------------------------------------------------------------


def message_push(*, conversation: Conversation, text: str, buttons: list[Button] | None = None,
                 execution: Execution | None = None) -> Message:
    """Save a message the bot sends on its own (an update) and hand it to the channel after commit."""
    message = Message.objects.create(
        conversation=conversation, sender=Sender.BOT, text=text, pushed=True, execution=execution,
        buttons=[{"label": b.label, "value": b.value} for b in buttons or []],
    )
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now())
    transaction.on_commit(lambda: message_deliver_later(message_pk=message.pk), robust=True)
    return message


def message_deliver_later(*, message_pk: int) -> None:
    from chat_app.channels import channel_get
    from chat_app.tasks import deliver_message

    message = Message.objects.select_related("conversation__identity").filter(pk=message_pk).first()
    if message is None:
        return
    channel = channel_get(message.conversation.identity.channel)
    if channel is None or channel.name == "web":
        return  # web clients poll; nothing to send
    deliver_message.apply_async(args=[message_pk], queue=settings.CELERY_TASK_DEFAULT_QUEUE)


# The delivery task tries a message this many times in all (its first try and its retries), waiting
# MESSAGE_RETRY_FIRST_WAIT seconds before the first retry and twice as long before each next one.
MESSAGE_MAX_ATTEMPTS = 6
MESSAGE_RETRY_FIRST_WAIT = 10
MESSAGE_RETRY_LONGEST_WAIT = MESSAGE_RETRY_FIRST_WAIT * 2 ** (MESSAGE_MAX_ATTEMPTS - 2)
# How long one attempt may take before another may start (adapters time out long before).
MESSAGE_ATTEMPT_LEASE = timedelta(minutes=5)
# Updates older than this are not delivered (nor handed to delivery again): late progress is noise, and the
# person can ask for the execution's status.
MESSAGE_REDELIVER_MAX_AGE = timedelta(hours=1)


def message_retry_wait(retries: int) -> int:
    """Seconds the delivery task waits before its retry number ``retries + 1``."""
    return MESSAGE_RETRY_FIRST_WAIT * 2**retries


def _deliverable(now: dt.datetime) -> QuerySet[Message]:
    """Messages a delivery may still send: undelivered, attempts left, not too old."""
    return Message.objects.filter(delivered_at__isnull=True, delivery_attempts__lt=MESSAGE_MAX_ATTEMPTS,
                                  created_at__gte=now - MESSAGE_REDELIVER_MAX_AGE)


def _lease_free(now: dt.datetime) -> Q:
    return Q(delivering_until__isnull=True) | Q(delivering_until__lt=now)


def message_deliver(*, message_pk: int) -> bool:
    """Send one pushed message through its channel's adapter (run by a task; raises to be retried).

    Each attempt is claimed first with a lease (``delivering_until``), so that two copies of the task (a
    retry and a redelivery) never deliver the message at the same time; an attempt that fails gives its
    lease back at once. Delivery is at least once: a worker killed between the adapter's send and the
    ``delivered_at`` update leaves the message to be delivered again.
    """
    from chat_app.channels import channel_get

    now = timezone.now()
    undelivered = _deliverable(now).filter(pk=message_pk)
    message = undelivered.select_related("conversation__identity").first()
    if message is None:
        return False
    channel = channel_get(message.conversation.identity.channel)
    if channel is None:
        return False
    if not undelivered.filter(_lease_free(now), delivery_attempts=message.delivery_attempts).update(
            delivery_attempts=message.delivery_attempts + 1, last_attempt_at=now,
            delivering_until=now + MESSAGE_ATTEMPT_LEASE):
        return False  # another attempt is under way, or was just made
    try:
        channel.deliver(conversation=message.conversation, messages=[message])
    except Exception:
        Message.objects.filter(pk=message.pk).update(delivering_until=None)
        raise
    Message.objects.filter(pk=message.pk).update(delivered_at=timezone.now(), delivering_until=None)
    return True


def message_attempts_left(*, message_pk: int) -> bool:
    """Whether a delivery may still try ``message_pk`` (the task retries only then)."""
    return _deliverable(timezone.now()).filter(pk=message_pk).exists()


def messages_redeliver_due(*, now: dt.datetime | None = None) -> list[int]:
    """Hand again to the delivery task the pushed messages whose delivery was lost (run by beat).

    Lost: the broker was down when the message was saved, or the worker holding its task was killed.
    Left alone: messages of channels that have no adapter to deliver through (the web chat, whose page
    polls), messages older than MESSAGE_REDELIVER_MAX_AGE, messages out of attempts, and messages tried or
    handed out within the task's longest wait between two tries (their own retry may still come). Each
    message handed out is stamped, so the next sweeps wait as long again before handing it once more.
    """
    from chat_app.channels import channel_names
    from chat_app.tasks import deliver_message

    now = now or timezone.now()
    pushing = [name for name in channel_names() if name != "web"]
    quiet = now - timedelta(seconds=MESSAGE_RETRY_LONGEST_WAIT + 60)
    due = _deliverable(now).filter(pushed=True, conversation__identity__channel__in=pushing).filter(
        Q(last_attempt_at__isnull=True, created_at__lt=now - timedelta(minutes=2)) | Q(last_attempt_at__lt=quiet)
    ).filter(_lease_free(now))  # an attempt under way keeps its message until its lease runs out
    pks = []
    for pk, last_attempt_at in due.order_by("pk").values_list("pk", "last_attempt_at")[:500]:
        # Stamp before handing out (conditionally: a concurrent sweep or attempt wins), so no sweep hands the
        # same message out again while this copy waits in the queue.
        if Message.objects.filter(pk=pk, last_attempt_at=last_attempt_at).update(last_attempt_at=now):
            deliver_message.apply_async(args=[pk], queue=settings.CELERY_TASK_DEFAULT_QUEUE)
            pks.append(pk)
    if pks:
        logger.warning("chat: %s pushed message(s) handed to delivery again: %s", len(pks), pks)
    return pks


def requests_expire(*, now: dt.datetime | None = None) -> list[str]:
    """Drop requests nobody answered in time and say so in their conversations (run by beat)."""
    now = now or timezone.now()
    expired = []
    due = Conversation.objects.exclude(state=State.IDLE).filter(expires_at__lte=now).select_related("process")
    for conversation in due[:500]:
        with transaction.atomic():
            if not Conversation.objects.filter(pk=conversation.pk, state=conversation.state,
                                               expires_at=conversation.expires_at).update(
                    state=State.IDLE, process=None, parameters={}, asking="", asked=[], pending_text="",
                    expires_at=None, updated_at=now):
                continue  # the person answered meanwhile
            text = replies.render("request_expired", process=conversation.process, minutes=pending_minutes())
            message_push(conversation=conversation, text=text)
        expired.append(conversation.public_id)
    return expired
