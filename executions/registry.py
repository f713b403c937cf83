"""The registry of processes: plain Python callables declared with :func:`process`.

A process is code; its row in the ``Process`` table (see :func:`executions.services.processes_sync`) is what
admins pause, own and grant access to. Any installed app can ship processes in a ``processes`` module; more
modules can be named in ``HEPTORA_PROCESS_MODULES`` (comma-separated) without writing an app.

A process callable receives the execution context and its validated parameters::

    @process("order-processing", name="Order Processing", steps=5, parameters=[...])
    def order_processing(ctx, params):
        ctx.step("Validating order")
        ...
        return {"orderId": params["orderId"], "status": "processed"}

``parameters`` is the process's default parameter definition (a list of field dicts, interpreted by
``forms_app``): the single source of truth for form rendering, API/chat validation and the OpenAPI schema.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import autodiscover_modules

from heptora.env import env_list

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")

ProcessFunction = Callable[[Any, dict[str, Any]], Any]


@dataclass(frozen=True)
class ProcessDefinition:
    slug: str
    name: str
    func: ProcessFunction
    description: str = ""
    steps: int = 1
    timeout: int | None = None
    parameters: tuple[Mapping[str, Any], ...] = ()
    chat_phrases: tuple[str, ...] = ()
    critical: bool = False
    # Whether an execution whose worker died may be started again from the beginning. Say False for a
    # process whose steps must never run twice (the execution then fails with code ``worker_lost``).
    restart_on_worker_lost: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)


_processes: dict[str, ProcessDefinition] = {}


def process(
    slug: str,
    *,
    name: str,
    description: str = "",
    steps: int = 1,
    timeout: int | None = None,
    parameters: Iterable[Mapping[str, Any]] = (),
    chat_phrases: Iterable[str] = (),
    critical: bool = False,
    restart_on_worker_lost: bool = True,
) -> Callable[[ProcessFunction], ProcessFunction]:
    """Register the decorated callable as the process ``slug``."""
    if not SLUG_RE.match(slug):
        raise ImproperlyConfigured(f"Process id {slug!r} must be a lowercase slug such as 'order-processing'.")
    if steps < 1:
        raise ImproperlyConfigured(f"Process {slug!r}: steps must be at least 1.")
    if timeout is not None and timeout < 1:
        raise ImproperlyConfigured(f"Process {slug!r}: timeout must be at least 1 second.")

    def decorator(func: ProcessFunction) -> ProcessFunction:
        existing = _processes.get(slug)
        if existing is not None and existing.func.__qualname__ != func.__qualname__:
            raise ImproperlyConfigured(f"Process id {slug!r} is registered twice ({existing.func.__module__}).")
        _processes[slug] = ProcessDefinition(
            slug=slug,
            name=name,
            func=func,
            description=description,
            steps=steps,
            timeout=timeout,
            parameters=tuple(dict(p) for p in parameters),
            chat_phrases=tuple(chat_phrases),
            critical=critical,
            restart_on_worker_lost=restart_on_worker_lost,
        )
        return func

    return decorator


def get(slug: str) -> ProcessDefinition | None:
    return _processes.get(slug)


def all_definitions() -> list[ProcessDefinition]:
    return sorted(_processes.values(), key=lambda d: d.slug)


def autodiscover() -> None:
    autodiscover_modules("processes")
    for module in env_list("HEPTORA_PROCESS_MODULES"):
        importlib.import_module(module)
