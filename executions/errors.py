"""Errors of the launch path and of execution control.

Every front door turns these into its own kind of answer (HTTP status + body, form error, chat reply, CLI
line with a non-zero exit), so each carries a stable ``code`` and a sentence a person can act on.
"""

from __future__ import annotations


class HeptoraError(Exception):
    code = "error"
    http_status = 400

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class ProcessNotFound(HeptoraError):
    code = "process_not_found"
    http_status = 404


class ProcessPaused(HeptoraError):
    code = "process_paused"
    http_status = 409


class LaunchDenied(HeptoraError):
    code = "permission_denied"
    http_status = 403


class InvalidParameters(HeptoraError):
    """Parameters broke the process's rules; ``field_errors`` maps each field to its messages."""

    code = "invalid_parameters"
    http_status = 400

    def __init__(self, field_errors: dict[str, list[str]], message: str = "Some parameters are not valid.") -> None:
        super().__init__(message)
        self.field_errors = field_errors

    def __str__(self) -> str:
        details = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in self.field_errors.items())
        return f"{self.message} {details}".strip()


class ExecutionNotFound(HeptoraError):
    code = "execution_not_found"
    http_status = 404


class InvalidTransition(HeptoraError):
    """The execution is not in a status that allows the requested action."""

    code = "invalid_state"
    http_status = 409
