"""The browser side of the web forms: what the views need beyond the services, in small plain functions.

- who the visitor is (an Actor) and which executions they may see: access rules from executions.access,
  plus the executions an anonymous visitor started from a public form in this browser session;
- the field dicts of :func:`forms_app.services.form_web_fields` turned into what the templates render
  (ids, values kept after an error, input attributes, error and help ids for aria-describedby);
- the status of an execution for the tracking page's polling.

Nothing here writes: starting, retrying and cancelling go through the services.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, QueryDict
from django.urls import reverse

from executions import access
from executions.actors import Actor
from executions.errors import ExecutionNotFound
from executions.models import Execution, ExecutionStatus
from executions.selectors import event_as_dict
from executions.services import execution_get

SESSION_RUNS = "heptora_form_runs"
MAX_SESSION_RUNS = 50
TOKEN_FIELD = "submission_token"
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
RETRY_STATUSES = (ExecutionStatus.FAILED, ExecutionStatus.CANCELLED)
RECENT_EVENTS = 15

# File formats an admin may allow on an upload field -> what the browser's file picker offers, in words.
FILE_FORMATS: dict[str, tuple[str, str]] = {
    "pdf": (".pdf,application/pdf", "PDF"),
    "excel": (".xls,.xlsx,application/vnd.ms-excel,"
              "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "Excel"),
    "word": (".doc,.docx,application/msword,"
             "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "Word"),
    "csv": (".csv,text/csv", "CSV"),
    "image": ("image/png,image/jpeg,image/gif,image/webp", "image"),
    "text": (".txt,text/plain", "text"),
}


# --- Who is asking, and what they may see ----------------------------------------------------------------


def actor_for(request: HttpRequest) -> Actor:
    user = request.user
    if user.is_authenticated:
        return Actor.for_user(user)
    return Actor.anonymous(ref="session")


def session_key(request: HttpRequest) -> str:
    """The visitor's session key, creating the session if they have none yet (anonymous visitors)."""
    if not request.session.session_key:
        request.session.create()
    return request.session.session_key or ""


def session_runs_remember(request: HttpRequest, execution_id: str) -> None:
    """Let this browser session see an execution it started (an anonymous visitor of a public form)."""
    runs = [run for run in request.session.get(SESSION_RUNS, []) if run != execution_id]
    request.session[SESSION_RUNS] = [execution_id, *runs][:MAX_SESSION_RUNS]


def execution_visible(request: HttpRequest, execution: Execution) -> bool:
    if execution.public_id in request.session.get(SESSION_RUNS, []):
        return True
    return request.user.is_authenticated and access.execution_can_view(actor_for(request), execution)


def execution_for_visitor(request: HttpRequest, execution_id: str) -> Execution:
    """The execution, or Http404 both when it does not exist and when the visitor may not see it (so an id
    someone else's execution has is never confirmed)."""
    try:
        execution = execution_get(execution_id)
    except ExecutionNotFound:
        raise Http404("No such request") from None
    if not execution_visible(request, execution):
        raise Http404("No such request")
    return execution


def execution_can_retry(request: HttpRequest, execution: Execution) -> bool:
    """Failed and cancelled executions may be started again by whoever may control them (a rejected or
    expired one went through an approver: not something the requester re-sends on their own)."""
    if execution.status not in RETRY_STATUSES or not request.user.is_authenticated:
        return False
    return access.execution_can_control(actor_for(request), execution)


def request_limit_bytes(fields: list[dict[str, Any]]) -> int:
    """The most a submission of these fields may weigh: the site's file limit per file field, plus 1 MB of
    text. A bigger request is refused before Django reads (and stores) its body."""
    files = sum(1 for spec in fields if spec.get("type") == "file")
    return (files * settings.HEPTORA_FORM_MAX_UPLOAD_MB + 1) * 1024 * 1024


def content_length(request: HttpRequest) -> int:
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0


# --- Submission tokens -----------------------------------------------------------------------------------


def submission_token_valid(token: str) -> bool:
    """The shape of :func:`forms_app.services.form_new_submission_token`'s tokens: anything else did not come
    from a page we rendered (the service would start without de-duplication)."""
    return bool(_TOKEN_RE.match(token or ""))


def tracking_url(request: HttpRequest) -> str:
    """The tracking page's absolute address with ``{id}`` for the execution id (for the receipt e-mail)."""
    return request.build_absolute_uri(reverse("forms_app:my_runs")) + "{id}/"


# --- The form's fields, ready for the templates ----------------------------------------------------------


def _display(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else ""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "on", "1", "yes", "y"}
    return bool(value)


def posted_values(fields: list[dict[str, Any]], post: QueryDict) -> dict[str, Any]:
    """What the person sent for the web fields (checkboxes as true/false; files come from request.FILES).

    Fields the browser did not send (hidden by show_if, so disabled) are left out; the service decides."""
    values: dict[str, Any] = {}
    for spec in fields:
        name, kind = spec["name"], spec.get("type", "text")
        if kind == "file":
            continue
        if kind == "checkbox":
            values[name] = _truthy(post.get(name, ""))
        elif name in post:
            values[name] = post.get(name, "")
    return values


def _shown(spec: dict[str, Any], values: dict[str, Any], by_name: dict[str, dict[str, Any]]) -> bool:
    for other, expected in (spec.get("show_if") or {}).items():
        controller = by_name.get(other)
        actual = values.get(other)
        if controller is not None and controller.get("type") == "checkbox":
            if _truthy(actual) != _truthy(expected):
                return False
        elif str(actual if actual is not None else "").lower() != str(expected).lower():
            return False
        if controller is not None and not _shown(controller, values, by_name):
            return False
    return True


def _step(decimal_places: Any) -> str:
    if decimal_places is None or decimal_places == "":
        return "any"
    places = int(decimal_places)
    return "1" if places <= 0 else f"0.{'0' * (places - 1)}1"


def _max_file_mb(spec: dict[str, Any]) -> float:
    """The field's limit (``max_file_size``, bytes), never above the site's HEPTORA_FORM_MAX_UPLOAD_MB."""
    site = float(settings.HEPTORA_FORM_MAX_UPLOAD_MB)
    size = spec.get("max_file_size")
    return min(float(size) / (1024 * 1024), site) if size else site


def _file_hint(spec: dict[str, Any]) -> tuple[str, str]:
    formats = [str(f).lower().lstrip(".") for f in spec.get("allowed_formats") or []]
    accept = ",".join(FILE_FORMATS.get(f, (f".{f}", ""))[0] for f in formats)
    words = [FILE_FORMATS.get(f, ("", f.upper()))[1] for f in formats]
    parts = []
    if words:
        parts.append(" or ".join([", ".join(words[:-1]), words[-1]]) if len(words) > 1 else words[0])
    limit = _max_file_mb(spec)
    if limit:
        parts.append(f"up to {limit:g} MB")
    hint = ", ".join(parts)
    return accept, (hint[:1].upper() + hint[1:] + ".") if hint else ""


def fields_for_template(
    fields: list[dict[str, Any]], values: dict[str, Any], errors: dict[str, list[str]], *, after_error: bool = False
) -> list[dict[str, Any]]:
    """One dict per field with everything its template needs; ``values`` are initial or posted values."""
    by_name = {spec["name"]: spec for spec in fields}
    bound = []
    for spec in fields:
        name, kind = spec["name"], spec.get("type", "text")
        dom_id = f"field-{name}"
        field_errors = list(errors.get(name, []))
        attrs: dict[str, Any] = {"id": dom_id, "name": name}
        described = []
        if spec.get("help"):
            described.append(f"{dom_id}-help")
        if field_errors:
            described.append(f"{dom_id}-error")
            attrs["aria-invalid"] = "true"
        if spec.get("required"):  # what the web form requires (form_web_fields counts web_required in)
            attrs["required"] = True
            attrs["aria-required"] = "true"
        if spec.get("placeholder"):
            attrs["placeholder"] = spec["placeholder"]
        value = values.get(name)
        template_kind = kind
        extra: dict[str, Any] = {}
        if kind in ("text", "email", "phone"):
            attrs["type"] = {"text": "text", "email": "email", "phone": "tel"}[kind]
            attrs["autocomplete"] = {"email": "email", "phone": "tel"}.get(kind, "off" if spec.get("regex") else "on")
            if spec.get("min_length"):
                attrs["minlength"] = spec["min_length"]
            if spec.get("max_length"):
                attrs["maxlength"] = spec["max_length"]
            attrs["value"] = _display(value)
            template_kind = "input"
        elif kind == "number":
            attrs.update(type="number", inputmode="decimal" if spec.get("decimal_places") else "numeric",
                         step=_step(spec.get("decimal_places")), value=_display(value))
            for ours in ("min", "max"):
                if spec.get(ours) is not None:
                    attrs[ours] = _display(spec[ours])
            if spec.get("prefix"):
                extra["prefix"] = spec["prefix"]
                described.append(f"{dom_id}-prefix")
            template_kind = "input"
        elif kind in ("date", "month", "datetime"):
            attrs["type"] = {"date": "date", "month": "month", "datetime": "datetime-local"}[kind]
            shown = _display(value)
            if kind == "month" and re.fullmatch(r"\d{4}-\d{2}-\d{2}", shown):
                shown = shown[:7]
            if kind == "datetime":
                shown = shown.replace("Z", "")[:16]
            attrs["value"] = shown
            if kind == "month":
                attrs["placeholder"] = attrs.get("placeholder") or "YYYY-MM"
            template_kind = "input"
        elif kind in ("textarea", "object", "list"):
            if spec.get("max_length"):
                attrs["maxlength"] = spec["max_length"]
                described.append(f"{dom_id}-counter")
                attrs["data-counter"] = f"{dom_id}-counter"
            attrs["rows"] = 4
            extra["text"] = _display(value)
            template_kind = "textarea"
        elif kind == "dropdown":
            current = _display(value)
            extra["options"] = [{"value": c, "selected": str(c).lower() == current.lower()}
                                for c in spec.get("choices") or []]
            extra["blank"] = not spec.get("required") or not any(o["selected"] for o in extra["options"])
            template_kind = "select"
        elif kind == "checkbox":
            attrs.update(type="checkbox", value="true")
            if _truthy(value):
                attrs["checked"] = True
            attrs.pop("required", None)
            attrs.pop("aria-required", None)
            template_kind = "checkbox"
        elif kind == "file":
            attrs["type"] = "file"
            accept, hint = _file_hint(spec)
            if accept:
                attrs["accept"] = accept
            extra["file_hint"] = hint
            if hint:
                described.append(f"{dom_id}-formats")
            extra["choose_again"] = after_error
            if after_error:
                described.append(f"{dom_id}-again")
            template_kind = "input"
        else:
            attrs.update(type="text", value=_display(value))
            template_kind = "input"
        if described:
            attrs["aria-describedby"] = " ".join(described)
        condition = spec.get("show_if") or {}
        if condition:
            (other, expected), *_ = condition.items()
            attrs_show = {"data-show-if-field": f"field-{other}", "data-show-if-value": json.dumps(expected)}
            controller = by_name.get(other, {})
            label = controller.get("label", other)
            if controller.get("type") == "checkbox":
                extra["condition"] = f"Only needed when “{label}” is {'ticked' if _truthy(expected) else 'not ticked'}."
            else:
                extra["condition"] = f"Only needed when {label} is {_display(expected)}."
        else:
            attrs_show = {}
        bound.append({
            "name": name, "label": spec.get("label") or name, "kind": template_kind, "type": kind,
            "id": dom_id, "required": bool(spec.get("required")) and kind != "checkbox", "help": spec.get("help", ""),
            "errors": field_errors, "attrs": attrs, "wrapper_attrs": attrs_show,
            "hidden": bool(condition) and not _shown(spec, values, by_name), **extra,
        })
    first_error = next((f for f in bound if f["errors"] and not f["hidden"]), None)
    if first_error:
        first_error["attrs"]["autofocus"] = True  # without JavaScript too; form.js also focuses it
    return bound


def error_summary(fields: list[dict[str, Any]], errors: dict[str, list[str]]) -> list[dict[str, str]]:
    """The list at the top of the form: each field's errors linking to the field, then other errors."""
    items = [{"href": f"#{f['id']}", "text": f"{f['label']}: {message}"} for f in fields for message in f["errors"]]
    names = {f["name"] for f in fields}
    for name, messages in errors.items():
        if name not in names:
            label = "" if name in ("__all__", "non_field_errors") else f"{name}: "
            items += [{"href": "", "text": f"{label}{message}"} for message in messages]
    return items


# --- The tracking page's live status ---------------------------------------------------------------------


def progress_text(execution: Execution) -> str:
    """"Step 2/5 — 40%" once a step has started; the status in words before that."""
    if execution.current_step:
        return f"Step {execution.current_step}/{execution.total_steps} — {execution.percent}%"
    if execution.status == ExecutionStatus.SUCCESS:
        return "Done — 100%"
    return str(execution.get_status_display())


def execution_status(execution: Execution, *, can_retry: bool) -> dict[str, Any]:
    """What the tracking page polls: status, progress, current step, outcome and the latest events."""
    events = list(execution.events.order_by("-id")[:RECENT_EVENTS])
    error = None
    if execution.error_code or execution.error_message:
        error = {"code": execution.error_code, "message": execution.error_message, "step": execution.error_step}
    return {
        "executionId": execution.public_id,
        "status": execution.status,
        "statusLabel": execution.get_status_display(),
        "final": execution.is_terminal,
        "progress": {
            "step": execution.current_step,
            "totalSteps": execution.total_steps,
            "percent": execution.percent,
            "text": progress_text(execution),
        },
        "message": execution.progress_message,
        "result": execution.result,
        "error": error,
        "cancelRequested": execution.cancel_requested_at is not None and not execution.is_terminal,
        "canRetry": can_retry,
        "events": [event_as_dict(event) for event in reversed(events)],
    }
