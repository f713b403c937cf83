"""One message being handled: what the conversation engine says and does in reply.

:class:`Turn` holds the conversation (locked by :func:`chat_app.services.conversation_handle`), who speaks
and the answers collected; its methods are the dialogue: understanding a request, asking for what is
missing, confirming, starting through the launch path, and the built-in commands.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from chat_app import replies
from chat_app.channels import BotMessage, Button, ChatMessage
from chat_app.models import ChatIdentity, Conversation, ConversationState, ExecutionWatch, LinkCode
from chat_app.selectors import chat_catalog
from chat_app.understanding import (
    NO_WORDS,
    YES_WORDS,
    Interpretation,
    ProcessEntry,
    as_field_value,
    choice_match,
    extract,
    interpret,
    parse_date,
    words,
)
from executions import access, services
from executions.actors import Actor
from executions.errors import ExecutionNotFound, HeptoraError, InvalidParameters, InvalidTransition, LaunchDenied
from executions.models import ActorKind, Execution, ExecutionSource, ExecutionStatus, Process
from forms_app.parameters import parameter_clean_one, parameters_clean

State = ConversationState

CANCEL_WORDS = frozenset({"cancel", "stop", "abort", "quit", "nevermind"})
SKIP_WORDS = frozenset({"skip", "none", "no", "nothing", "n/a", "-"})
GLOBAL_INTENTS = frozenset({"help", "recent", "status", "cancel", "retry"})
MAX_LINK_FAILURES = 5


@dataclass
class Turn:
    """One message being handled: the conversation, who speaks, and the answers collected so far."""

    conversation: Conversation
    identity: ChatIdentity
    message: ChatMessage
    now: dt.datetime
    replies: list[BotMessage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    execution: Execution | None = None
    explanation: str = ""
    _catalog: list[ProcessEntry] | None = None

    # -- helpers

    @property
    def catalog(self) -> list[ProcessEntry]:
        if self._catalog is None:
            self._catalog = chat_catalog()
        return self._catalog

    def entry(self, slug: str) -> ProcessEntry | None:
        return next((e for e in self.catalog if e.slug == slug), None)

    @property
    def actor(self) -> Actor:
        if self.message.actor is not None:
            return self.message.actor
        user = self.identity.user
        return Actor.for_user(user, kind=ActorKind.CHAT, label=f"{user.get_username()} via {self.identity.channel}",
                              ref=f"{self.identity.channel}:{self.identity.external_id}")

    def say(self, template: str, buttons: tuple[Button, ...] | list[Button] = (), **context: Any) -> None:
        text = replies.render(template, **context)
        if self.notes:
            text = "\n".join([*self.notes, text])
            self.notes = []
        self.replies.append(BotMessage(text=text, buttons=tuple(buttons)))

    def may_start(self, process: Process) -> bool:
        allowed = self.message.allowed_processes
        return (allowed is None or process.slug in allowed) and access.process_can_execute(self.actor, process)

    def reset(self) -> None:
        c = self.conversation
        c.state, c.process, c.parameters, c.asking, c.asked, c.pending_text, c.expires_at = (
            State.IDLE, None, {}, "", [], "", None)

    def hold(self) -> None:
        self.conversation.expires_at = self.now + timedelta(seconds=settings.HEPTORA_CHAT_CONFIRM_TIMEOUT)

    # -- dispatch

    def run(self, text: str, *, is_action: bool) -> None:
        conversation = self.conversation
        if conversation.state != State.IDLE and conversation.expires_at and conversation.expires_at <= self.now:
            self.say("request_expired", process=conversation.process, minutes=pending_minutes())
            self.reset()
        if is_action and text.startswith("choose:"):
            if self.identity.user is None:
                self.say("not_linked", channel=self.identity.channel)
                return
            self.start(text.removeprefix("choose:"), None, conversation.pending_text)
            return
        meaning = interpret(text, self.catalog, now=self.now)
        self.explanation = f"{meaning.intent}: {meaning.explanation}"
        if meaning.intent == "link":
            self.link(meaning.code)
        elif self.identity.user is None:
            self.say("not_linked", channel=self.identity.channel)
        elif conversation.state == State.CONFIRMING:
            self.on_confirming(text, meaning)
        elif conversation.state == State.COLLECTING:
            self.on_answer(text, meaning)
        else:
            self.on_idle(text, meaning)

    def on_idle(self, text: str, meaning: Interpretation) -> None:
        intent = meaning.intent
        if intent == "start":
            self.start(meaning.process or "", meaning.parameters, text)
        elif intent in GLOBAL_INTENTS:
            self.global_intent(meaning)
        elif intent == "yes":
            self.say("nothing_to_confirm")
        elif intent == "no":
            self.say("nothing_to_cancel")
        elif intent == "clarify":
            self.did_you_mean(text, meaning)
        elif intent == "empty":
            self.help()
        else:
            self.unknown(text)

    def global_intent(self, meaning: Interpretation) -> None:
        if meaning.intent == "help":
            self.help()
        elif meaning.intent == "recent":
            self.recent()
        elif meaning.intent == "status":
            self.status(meaning.execution_id)
        elif meaning.intent == "cancel":
            self.cancel_execution(meaning.execution_id or "")
        elif meaning.intent == "retry":
            self.retry(meaning.execution_id or "")

    # -- understanding a request

    def did_you_mean(self, text: str, meaning: Interpretation) -> None:
        """Offer the likely candidates as buttons (only processes this person may start)."""
        startable = {e.slug for e in self.startable()}
        buttons = []
        for candidate in meaning.candidates[:3]:
            if candidate.key == "intent:help":
                buttons.append(Button("Help", "help"))
            elif candidate.key == "intent:recent":
                buttons.append(Button("Recent executions", "recent executions"))
            else:
                entry = self.entry(candidate.key)
                if entry is not None and entry.slug in startable:
                    buttons.append(Button(entry.name, f"choose:{entry.slug}"))
        if not buttons:
            self.unknown(text)
            return
        self.conversation.pending_text = text
        self.say("did_you_mean", buttons=buttons, options=[b.label for b in buttons])

    def unknown(self, text: str) -> None:
        allowed = self.startable()
        examples = [e.examples[0] for e in allowed if e.examples][:3]
        buttons = [Button(example, example) for example in examples] + [Button("Help", "help")]
        self.say("unknown", buttons=buttons, text=text, examples=examples)

    def startable(self) -> list[ProcessEntry]:
        allowed = self.message.allowed_processes
        slugs = set(access.processes_executable_by(self.actor).values_list("slug", flat=True))
        return [e for e in self.catalog if e.slug in slugs and (allowed is None or e.slug in allowed)]

    def help(self) -> None:
        entries = self.startable()
        self.say("help", buttons=[Button(e.examples[0], e.examples[0]) for e in entries if e.examples][:4],
                 processes=entries)

    # -- collecting parameters

    def start(self, slug: str, values: Mapping[str, Any] | None, text: str) -> None:
        process = Process.objects.filter(slug=slug, is_registered=True).first()
        entry = self.entry(slug)
        if process is None or entry is None:
            self.unknown(text)
            return
        if not self.may_start(process):
            self.reset()
            self.say("denied", process=process)
            return
        if process.is_paused:
            self.reset()
            self.say("error", message=f"{process.name} is paused and does not accept new starts.")
            return
        if values is None:
            values = extract(entry.fields, text, now=self.now).values
        self.reset()
        c = self.conversation
        c.state, c.process = State.COLLECTING, process
        first_error = self.apply(entry, values)
        self.next_step(entry, first_error)

    def apply(self, entry: ProcessEntry, values: Mapping[str, Any]) -> tuple[str, str] | None:
        """Validate values one by one in the definition's order; the invalid ones are left out and reported."""
        params = self.conversation.parameters
        first_error = None
        for spec in entry.fields:
            name = spec["name"]
            if name not in values:
                continue
            try:
                params[name] = parameter_clean_one(self.conversation.process, name, values[name], params)
            except InvalidParameters as exc:
                message = exc.field_errors.get(name, ["Not valid."])[0]
                if first_error is None:
                    first_error = (name, message)
                if not spec.get("required") and name not in entry.ask_fields:
                    self.notes.append(f"{spec.get('label', name)}: {message} (left out)")
        return first_error

    def next_missing(self, entry: ProcessEntry) -> Mapping[str, Any] | None:
        params = self.conversation.parameters
        try:
            parameters_clean(self.conversation.process, params, source="chat")
            errors: dict[str, list[str]] = {}
        except InvalidParameters as exc:
            errors = exc.field_errors
        for spec in entry.fields:
            name = spec["name"]
            if name in params:
                continue
            if name in errors:
                return spec
            if name in entry.ask_fields and name not in self.conversation.asked and _shown(spec, params):
                return spec
        return None

    def next_step(self, entry: ProcessEntry, error: tuple[str, str] | None = None) -> None:
        c = self.conversation
        spec = self.next_missing(entry)
        if spec is not None:
            self.ask(entry, spec, error[1] if error and error[0] == spec["name"] else "")
            return
        try:
            c.parameters = parameters_clean(c.process, c.parameters, source="chat")
        except InvalidParameters as exc:
            name = next((s["name"] for s in entry.fields if s["name"] in exc.field_errors), None)
            if name is None:
                self.reset()
                self.say("error", message=str(exc))
                return
            c.parameters.pop(name, None)
            self.ask(entry, _spec(entry, name), exc.field_errors[name][0])
            return
        if settings.HEPTORA_CHAT_ALWAYS_CONFIRM or c.process.critical:
            c.state, c.asking = State.CONFIRMING, ""
            self.hold()
            self.say("confirm", buttons=[Button("Confirm", "confirm"), Button("Cancel", "cancel")],
                     process=c.process, parameters=_labelled(entry, c.parameters), minutes=pending_minutes())
        else:
            self.launch()

    def ask(self, entry: ProcessEntry, spec: Mapping[str, Any], error: str = "") -> None:
        c = self.conversation
        c.state, c.asking = State.COLLECTING, spec["name"]
        self.hold()
        kind = spec.get("type", "text")
        optional = not spec.get("required")
        buttons = []
        if kind == "dropdown" and len(spec["choices"]) <= 8:
            buttons = [Button(str(choice), str(choice)) for choice in spec["choices"]]
        elif kind == "checkbox":
            buttons = [Button("Yes", "yes"), Button("No", "no")]
        if optional and kind != "checkbox":
            buttons.append(Button("Skip", "skip"))
        self.say("ask", buttons=buttons, field=spec, label=spec.get("label", spec["name"]), kind=kind,
                 choices=spec.get("choices", ()), error=error, optional=optional, process=c.process)

    def on_answer(self, text: str, meaning: Interpretation) -> None:
        c = self.conversation
        entry = self.entry(c.process.slug) if c.process else None
        spec = _spec(entry, c.asking) if entry else None
        if entry is None or spec is None:
            self.reset()
            self.on_idle(text, meaning)
            return
        plain = " ".join(words(text))
        if plain in CANCEL_WORDS or (plain in NO_WORDS and spec.get("type") != "checkbox" and spec.get("required")):
            self.cancel_request()
            return
        name = spec["name"]
        if not spec.get("required") and spec.get("type") != "checkbox" and plain in SKIP_WORDS:
            c.asked = [*c.asked, name]
            self.next_step(entry)
            return
        try:
            value = parameter_clean_one(c.process, name, _prepare(spec, text, self.now), c.parameters)
        except InvalidParameters as exc:
            if meaning.intent in GLOBAL_INTENTS or (meaning.intent == "start" and meaning.score >= 0.85):
                if meaning.intent == "start":
                    self.start(meaning.process or "", meaning.parameters, text)
                else:
                    self.global_intent(meaning)
                    self.ask(entry, spec)
                return
            self.ask(entry, spec, exc.field_errors.get(name, ["Not valid."])[0])
            return
        c.parameters[name] = value
        if name in entry.ask_fields:
            c.asked = [*c.asked, name]
        if spec.get("type") in ("dropdown", "checkbox"):  # "yes, for EMEA" answers two questions
            others = [s["name"] for s in entry.fields if s["name"] not in c.parameters]
            extra = extract(entry.fields, text, now=self.now, only=others).values
            self.apply(entry, {k: v for k, v in extra.items() if k not in c.parameters})
        self.next_step(entry)

    def on_confirming(self, text: str, meaning: Interpretation) -> None:
        c = self.conversation
        plain = " ".join(words(text))
        if meaning.intent == "yes" or plain in YES_WORDS:
            self.launch()
            return
        if meaning.intent == "no" or plain in CANCEL_WORDS:
            self.cancel_request()
            return
        entry = self.entry(c.process.slug) if c.process else None
        if entry is not None and meaning.intent not in ("start", *GLOBAL_INTENTS):
            changes = extract(entry.fields, text, now=self.now).values
            if changes:
                c.state = State.COLLECTING
                self.next_step(entry, self.apply(entry, changes))
                return
        if meaning.intent in GLOBAL_INTENTS:
            self.global_intent(meaning)
        elif meaning.intent == "start":
            self.start(meaning.process or "", meaning.parameters, text)
        else:
            self.say("confirm_reminder", buttons=[Button("Confirm", "confirm"), Button("Cancel", "cancel")],
                     process=c.process)

    def cancel_request(self) -> None:
        process = self.conversation.process
        self.reset()
        self.say("request_cancelled", process=process)

    # -- starting

    def launch(self) -> None:
        c = self.conversation
        process = c.process
        entry = self.entry(process.slug) if process else None
        if process is None or entry is None:
            self.reset()
            self.say("nothing_to_confirm")
            return
        try:
            with transaction.atomic():
                execution = services.execution_start(process_id=process.slug, parameters=dict(c.parameters),
                                                     source=ExecutionSource.CHAT, actor=self.actor)
                ExecutionWatch.objects.create(execution=execution, conversation=c)
        except InvalidParameters as exc:
            name = next((s["name"] for s in entry.fields if s["name"] in exc.field_errors), None)
            if name is None:
                self.reset()
                self.say("error", message=str(exc))
                return
            c.parameters.pop(name, None)
            self.ask(entry, _spec(entry, name), exc.field_errors[name][0])
            return
        except LaunchDenied:
            self.reset()
            self.say("denied", process=process)
            return
        except HeptoraError as exc:
            self.reset()
            self.say("error", message=exc.message)
            return
        self.reset()
        c.last_execution = execution
        self.execution = execution
        template = "awaiting_approval" if execution.status == ExecutionStatus.AWAITING_APPROVAL else "started"
        self.say(template, process=process, execution=execution)

    # -- executions

    def visible_execution(self, execution_id: str) -> Execution | None:
        try:
            execution = services.execution_get(execution_id)
        except ExecutionNotFound:
            return None
        allowed = self.message.allowed_processes
        if allowed is not None and execution.process.slug not in allowed:
            return None
        return execution if access.execution_can_view(self.actor, execution) else None

    def status(self, execution_id: str | None) -> None:
        if execution_id is None:
            last = self.conversation.last_execution
            if last is None:
                self.recent()
                return
            execution_id = last.public_id
        execution = self.visible_execution(execution_id)
        if execution is None:
            self.say("not_found", execution_id=execution_id)
            return
        self.say("status", buttons=_execution_buttons(execution), execution=execution, process=execution.process,
                 summary=replies.result_summary(execution.result), duration=replies.duration(execution))

    def recent(self) -> None:
        executions = access.executions_visible_to(self.actor)
        if self.message.allowed_processes is not None:
            executions = executions.filter(process__slug__in=self.message.allowed_processes)
        latest = list(executions.order_by("-created_at", "-id")[:5])
        buttons = [Button(f"Status {e.public_id}", f"status {e.public_id}") for e in latest[:3]]
        self.say("recent", buttons=buttons, rows=[(e, replies.ago(e.created_at, self.now)) for e in latest])

    def cancel_execution(self, execution_id: str) -> None:
        execution = self.visible_execution(execution_id)
        if execution is None:
            self.say("not_found", execution_id=execution_id)
            return
        try:
            execution = services.execution_cancel(execution=execution, actor=self.actor)
        except HeptoraError as exc:
            self.say("error", message=exc.message)
            return
        self.say("execution_cancelled", execution=execution, process=execution.process)

    def retry(self, execution_id: str) -> None:
        original = self.visible_execution(execution_id)
        if original is None:
            self.say("not_found", execution_id=execution_id)
            return
        try:
            with transaction.atomic():
                execution = services.execution_retry(execution=original, actor=self.actor,
                                                     source=ExecutionSource.CHAT)
                ExecutionWatch.objects.create(execution=execution, conversation=self.conversation)
        except (InvalidTransition, LaunchDenied, HeptoraError) as exc:
            self.say("error", message=exc.message)
            return
        self.conversation.last_execution = execution
        self.execution = execution
        template = "awaiting_approval" if execution.status == ExecutionStatus.AWAITING_APPROVAL else "started"
        self.say(template, process=execution.process, execution=execution)

    # -- linking an external identity

    def link(self, code: str) -> None:
        identity = self.identity
        if identity.user_id is not None:
            self.say("link_already", user=identity.user, channel=identity.channel)
            return
        if identity.link_locked_until and identity.link_locked_until > self.now:
            self.say("link_locked")
            return
        digest = link_code_hash(code)
        linked = LinkCode.objects.filter(code_hash=digest, used_at__isnull=True, expires_at__gt=self.now).update(
            used_at=self.now, used_by=identity)
        if not linked:
            identity.failed_link_attempts += 1
            if identity.failed_link_attempts >= MAX_LINK_FAILURES:
                identity.failed_link_attempts, identity.link_locked_until = 0, self.now + timedelta(minutes=15)
            identity.save(update_fields=["failed_link_attempts", "link_locked_until"])
            self.say("link_bad")
            return
        identity.user = LinkCode.objects.get(code_hash=digest).user
        identity.linked_at, identity.failed_link_attempts = self.now, 0
        identity.save(update_fields=["user", "linked_at", "failed_link_attempts"])
        self.say("link_ok", user=identity.user, channel=identity.channel)


def pending_minutes() -> int:
    return max(1, round(settings.HEPTORA_CHAT_CONFIRM_TIMEOUT / 60))


def _spec(entry: ProcessEntry, name: str) -> Mapping[str, Any] | None:
    return next((s for s in entry.fields if s["name"] == name), None)


def _shown(spec: Mapping[str, Any], values: Mapping[str, Any]) -> bool:
    for other, expected in (spec.get("show_if") or {}).items():
        actual = values.get(other)
        same = (str(actual).lower() == expected.lower()) if isinstance(expected, str) else actual == expected
        if not same:
            return False
    return True


def _labelled(entry: ProcessEntry, parameters: Mapping[str, Any]) -> list[tuple[str, str]]:
    shown = []
    for spec in entry.fields:
        if spec["name"] in parameters:
            value = parameters[spec["name"]]
            shown.append((str(spec.get("label", spec["name"])),
                          ("yes" if value else "no") if isinstance(value, bool) else str(value)))
    return shown


def _prepare(spec: Mapping[str, Any], text: str, now: dt.datetime) -> Any:
    """A typed answer in the form the field's rules expect ("hgih" → "High", "last month" → "2024-10")."""
    kind = spec.get("type", "text")
    answer = text.strip()
    if kind == "dropdown":
        matched, _score = choice_match(spec["choices"], answer)
        if matched:
            return matched
        found = extract([spec], answer, now=now).values.get(spec["name"])
        return found if found is not None else answer
    if kind == "checkbox":
        first = (words(answer) or [""])[0]
        if first in YES_WORDS or first in {"include", "with", "true", "on"}:
            return "yes"
        if first in NO_WORDS or first in {"without", "false", "off", "skip"}:
            return "no"
        return answer
    if kind in ("date", "month", "datetime"):
        if kind == "month" and len(answer) in (7, 10) and answer[:4].isdigit():
            return answer
        if kind == "date" and len(answer) == 10 and answer[:4].isdigit():
            return answer
        parsed = parse_date(answer, now=now)
        return as_field_value(spec, parsed) if parsed else answer
    if kind == "number":
        return answer.replace("$", "").replace(",", "").strip()
    return answer


def _execution_buttons(execution: Execution) -> list[Button]:
    if not execution.is_terminal:
        return [Button("Cancel it", f"cancel {execution.public_id}")]
    if execution.status in services.RETRYABLE:
        return [Button("Retry", f"retry {execution.public_id}")]
    return []



def link_code_hash(code: str) -> str:
    normal = "".join(ch for ch in code.upper() if ch.isalnum())
    return hashlib.sha256(normal.encode()).hexdigest()
