"""Template helpers for the web forms."""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.utils.html import format_html_join
from django.utils.safestring import SafeString

register = template.Library()


@register.simple_tag
def attrs(*groups: dict[str, Any]) -> SafeString:
    """Render attribute dicts as HTML attributes: True → bare attribute, False/None → left out, all escaped."""
    pairs: list[tuple[str, ...]] = []
    bare: list[tuple[str]] = []
    for group in groups:
        for name, value in (group or {}).items():
            if value is True:
                bare.append((name,))
            elif value is not None and value is not False:
                pairs.append((name, str(value)))
    text = format_html_join("", ' {}="{}"', pairs) + format_html_join("", " {}", bare)
    return SafeString(text)


@register.filter
def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@register.filter
def is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))
