"""The bot's words: one Django template per message in ``chat_app/templates/chat_app/bot/``.

Override any of them by putting a file with the same path in a template folder that comes first (for
example ``heptora/templates/chat_app/bot/started.txt``). Templates render as plain text (no HTML escaping):
every channel shows text, and the web widget inserts it as text, never as HTML.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.template import Context
from django.template.loader import get_template

from executions.models import Execution


def render(name: str, **context: Any) -> str:
    template = get_template(f"chat_app/bot/{name}.txt")
    text = template.template.render(Context(context, autoescape=False))  # type: ignore[attr-defined]
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def ago(moment: dt.datetime, now: dt.datetime) -> str:
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def duration(execution: Execution) -> str:
    seconds = execution.duration_seconds
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def result_summary(result: Any) -> str:
    """A process's own ``summary`` when it gives one, else its first few plain values."""
    if isinstance(result, dict):
        if isinstance(result.get("summary"), str):
            return result["summary"]
        plain = [f"{k}: {v}" for k, v in result.items() if isinstance(v, (str, int, float, bool))][:4]
        return ", ".join(plain)
    if result is None:
        return ""
    return str(result)[:300]
