"""Errors of the chat engine a door turns into its own answer (the API: 404 in its error shape)."""

from __future__ import annotations

from executions.errors import HeptoraError


class ConversationNotFound(HeptoraError):
    code = "conversation_not_found"
    http_status = 404
