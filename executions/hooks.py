"""Extension points of the launch path, filled in by other apps in their ``AppConfig.ready``.

* The parameter definition (``forms_app``) validates and cleans parameters and builds the Django form used
  by admin's "Run now"; without one, parameters must be a JSON object and are taken as given.
* Approval gates (``approvals``) say whether a start must wait for a person's decision.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from django import forms

    from executions.actors import Actor
    from executions.models import Process


class ParameterDefinition(Protocol):
    def clean(self, process: Process, parameters: dict[str, Any], *, source: str) -> dict[str, Any]:
        """Return the cleaned parameters or raise :class:`executions.errors.InvalidParameters`."""

    def form_class(self, process: Process) -> type[forms.Form]:
        """A Django form whose cleaned_data are the parameters."""


ApprovalGate = Callable[..., bool]
"""``gate(process=, actor=, source=, parameters=) -> bool``: True when the start needs approval."""

_parameter_definition: ParameterDefinition | None = None
_approval_gates: list[ApprovalGate] = []


def register_parameter_definition(definition: ParameterDefinition) -> None:
    global _parameter_definition
    _parameter_definition = definition


def parameter_definition() -> ParameterDefinition | None:
    return _parameter_definition


def register_approval_gate(gate: ApprovalGate) -> None:
    if gate not in _approval_gates:
        _approval_gates.append(gate)


def unregister_approval_gate(gate: ApprovalGate) -> None:
    if gate in _approval_gates:
        _approval_gates.remove(gate)


def approval_required(*, process: Process, actor: Actor, source: str, parameters: dict[str, Any]) -> bool:
    return any(gate(process=process, actor=actor, source=source, parameters=parameters) for gate in _approval_gates)
