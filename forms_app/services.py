"""The web forms' domain functions: the ONE way views, admin, commands and other apps use forms.

Views stay thin: they call these and render. Every start goes through executions.services.execution_start.

Access (:func:`form_can_use`) is decided here and nowhere else: public forms are open to anyone with the
link, "authenticated" forms to any active signed-in user, restricted forms to the users and groups holding
the ``forms_app.use_form`` object permission (django-guardian), and superusers may use every form.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from guardian.models import GroupObjectPermission, UserObjectPermission
from guardian.shortcuts import assign_perm, get_objects_for_user, remove_perm

from executions import services as executions_services
from executions.actors import Actor
from executions.errors import InvalidParameters, LaunchDenied
from executions.models import ExecutionSource, Process
from forms_app import parameters, uploads
from forms_app.models import FieldType, FormAccess, FormDefinition, FormField, FormSubmission, ProfileDefault

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
    from django.core.files.uploadedfile import UploadedFile
    from django.db.models import QuerySet

    from executions.models import Execution

logger = logging.getLogger(__name__)
USE_FORM = "forms_app.use_form"
NON_FIELD = "__all__"
TOKEN_MAX_LENGTH = 64


class FormNotFound(Exception):
    """No active form has that slug."""


@dataclass(frozen=True)
class Submitter:
    """Who sends a form: a signed-in user, or an anonymous visitor identified only by their session."""

    user: AbstractBaseUser | AnonymousUser
    session_key: str


def form_get(slug: str) -> FormDefinition:
    """The active form with ``slug`` (its process loaded), or :class:`FormNotFound`."""
    form = FormDefinition.objects.select_related("process").filter(slug=slug, is_active=True).first()
    if form is None:
        raise FormNotFound(f"There is no form at '{slug}'.")
    return form


# --- Who may use a form ---------------------------------------------------------------------------------


def form_can_use(user: AbstractBaseUser | AnonymousUser, form: FormDefinition) -> bool:
    """May ``user`` open and send ``form``? public: anyone; authenticated: any active user; restricted: the
    users and groups holding the ``forms_app.use_form`` object permission (django-guardian), and superusers."""
    if not form.is_active:
        return False
    signed_in = bool(user.is_authenticated and user.is_active)
    if signed_in and user.is_superuser:
        return True
    if form.access == FormAccess.PUBLIC:
        return True
    if not signed_in:
        return False
    if form.access == FormAccess.AUTHENTICATED:
        return True
    return user.has_perm(USE_FORM) or user.has_perm(USE_FORM, form)


def forms_usable_by(user: AbstractBaseUser | AnonymousUser) -> QuerySet[FormDefinition]:
    """The active forms ``user`` may use, for the /forms/ list."""
    active = FormDefinition.objects.filter(is_active=True).select_related("process")
    if not (user.is_authenticated and user.is_active):
        return active.filter(access=FormAccess.PUBLIC)
    if user.is_superuser:
        return active
    # (guardian ignores global permissions unless with_superuser is on; superusers returned above anyway)
    granted = get_objects_for_user(user, USE_FORM, klass=FormDefinition, accept_global_perms=True)
    return active.filter(
        Q(access__in=[FormAccess.PUBLIC, FormAccess.AUTHENTICATED])
        | Q(access=FormAccess.RESTRICTED, pk__in=granted.values("pk"))
    )


def form_access_holders(form: FormDefinition) -> tuple[list[Any], list[Group]]:
    """The users and the groups (roles) holding ``use_form`` on ``form`` itself."""
    object_filter = {"content_type__app_label": "forms_app", "content_type__model": "formdefinition",
                     "object_pk": str(form.pk), "permission__codename": "use_form"}
    user_ids = UserObjectPermission.objects.filter(**object_filter).values("user_id")
    group_ids = GroupObjectPermission.objects.filter(**object_filter).values("group_id")
    users = list(get_user_model().objects.filter(pk__in=user_ids).order_by("username"))
    groups = list(Group.objects.filter(pk__in=group_ids).order_by("name"))
    return users, groups


def form_grant_access(
    form: FormDefinition, *, users: Iterable[Any] | None = None, groups: Iterable[Group] | None = None
) -> None:
    """Make exactly ``users`` and ``groups`` hold ``use_form`` on ``form`` (None leaves that side as it is).

    The permission only matters while the form's access is "restricted"; it is kept when an admin switches
    to another mode and back.
    """
    current_users, current_groups = form_access_holders(form)
    with transaction.atomic():
        if users is not None:
            wanted = {user.pk: user for user in users}
            for user in current_users:
                if user.pk not in wanted:
                    remove_perm(USE_FORM, user, form)
            for pk, user in wanted.items():
                if pk not in {u.pk for u in current_users}:
                    assign_perm(USE_FORM, user, form)
        if groups is not None:
            wanted_groups = {group.pk: group for group in groups}
            for group in current_groups:
                if group.pk not in wanted_groups:
                    remove_perm(USE_FORM, group, form)
            for pk, group in wanted_groups.items():
                if pk not in {g.pk for g in current_groups}:
                    assign_perm(USE_FORM, group, form)


# --- What the browser shows -----------------------------------------------------------------------------


def form_web_fields(form: FormDefinition) -> list[dict[str, Any]]:
    """The field dicts shown on the web form, in order (``on_web_form`` fields; see FormField.as_spec).

    ``required`` already says whether the web form requires the field (``web_required`` included). A form
    without fields shows its process's code declaration, which is then the definition every door uses.
    """
    return [
        {**spec, "required": parameters.required_for(spec, "form")}
        for spec in parameters.fields_for(form.process)
        if spec.get("on_web_form", True) and spec.get("type", "text") not in ("object", "list")
    ]


def form_initial(form: FormDefinition, user: AbstractBaseUser | AnonymousUser) -> dict[str, Any]:
    """Initial values: each field's default, the current month where asked, and profile defaults (name,
    e-mail, department) for a signed-in user."""
    profile = _profile_values(user)
    today = timezone.localdate()
    initial: dict[str, Any] = {}
    for spec in form_web_fields(form):
        name = spec["name"]
        if "default" in spec:
            initial[name] = spec["default"]
        if spec.get("default_current_month"):
            initial[name] = today.strftime("%Y-%m") if spec["type"] == FieldType.MONTH else (
                today.replace(day=1).isoformat())
        value = profile.get(spec.get("profile_default", ""))
        if value and spec["type"] == FieldType.DROPDOWN:
            value = next((c for c in spec["choices"] if c.lower() == value.strip().lower()), None)
        if value:
            initial[name] = value
    return initial


def _profile_values(user: AbstractBaseUser | AnonymousUser) -> dict[str, str]:
    if not user.is_authenticated:
        return {}
    from forms_app.models import StaffProfile

    profile = StaffProfile.objects.filter(user=user).first()
    return {
        ProfileDefault.NAME: (user.get_full_name() or "").strip() or user.get_username(),
        ProfileDefault.EMAIL: user.email or "",
        ProfileDefault.DEPARTMENT: profile.department if profile else "",
    }


def form_new_submission_token() -> str:
    """A fresh submission token for one rendered form (put it in a hidden input, send it back on submit)."""
    return secrets.token_urlsafe(24)


# --- Sending a form -------------------------------------------------------------------------------------


def submitter_actor(submitter: Submitter) -> Actor:
    """The actor a submission is recorded as: the signed-in user, or an anonymous session (hashed)."""
    user = submitter.user
    if user.is_authenticated:
        return Actor.for_user(user)
    digest = hashlib.sha256((submitter.session_key or "").encode()).hexdigest()[:16]
    return Actor.anonymous(ref=f"session:{digest}")


def form_submit(
    form: FormDefinition,
    *,
    data: Mapping[str, Any],
    files: Mapping[str, UploadedFile],
    submitter: Submitter,
    submission_token: str,
    tracking_url: str = "",
) -> Execution:
    """Validate and start: hidden (show_if) fields dropped, uploads checked by content and size and stored
    through Django storage as file references, then execution_start(source="form",
    authorized_by=f"form:{slug}", require_approval=form.requires_approval). The same ``submission_token``
    (one per rendered form) returns the first execution instead of starting a second one.

    With ``form.confirmation_email`` the sender (the signed-in user's e-mail, or an anonymous sender's value
    of the form's e-mail field) gets a "we received your request" e-mail when the execution is saved, and
    the execution's outcome e-mail when it ends. ``tracking_url`` (absolute, with ``{id}`` for the
    execution id) is put in the receipt when given.

    Raises executions.errors.InvalidParameters (field errors, non-field ones under ``"__all__"``; nothing
    written, no file kept), FormNotFound, LaunchDenied, ProcessPaused.
    """
    if not form.is_active:
        raise FormNotFound(f"There is no form at '{form.slug}'.")
    if not form_can_use(submitter.user, form):
        raise LaunchDenied(f"You are not allowed to use the form '{form.title}'.")
    actor = submitter_actor(submitter)
    token = (submission_token or "").strip() or form_new_submission_token()
    if len(token) > TOKEN_MAX_LENGTH:
        raise InvalidParameters({NON_FIELD: ["This page is out of date; reload it and send the form again."]})
    earlier = _earlier_submission(form, token, actor)
    if earlier is not None:
        return earlier

    specs = form_web_fields(form)
    values = {spec["name"]: data.get(spec["name"]) for spec in specs
              if spec.get("type") != FieldType.FILE and spec["name"] in data}
    shown = parameters.visible_names(specs, values)
    values = {name: value for name, value in values.items() if name in shown}
    checked, file_errors = _check_files(specs, files, shown)
    if file_errors:
        try:
            parameters.parameters_clean(form.process, values, source="form")
            errors: dict[str, list[str]] = {}
        except InvalidParameters as exc:
            errors = exc.field_errors
        raise InvalidParameters({**errors, **file_errors})

    stored: list[dict[str, Any]] = []
    try:
        for name, upload, sniffed in checked:
            reference = uploads.store(upload, name=upload.name or name, folder=form.slug, sniffed=sniffed)
            stored.append(reference)
            values[name] = reference
        recipient = _receipt_recipient(form, submitter, specs, values)
        with transaction.atomic():
            execution = executions_services.execution_start(
                process_id=form.process.slug, parameters=values, source="form", actor=actor,
                authorized_by=f"form:{form.slug}", require_approval=form.requires_approval,
                notify_email=recipient,
            )
            FormSubmission.objects.create(token=token, form=form, execution=execution, actor_ref=actor.ref[:200])
            if recipient:
                _queue_receipt(form, execution, recipient, tracking_url)
    except IntegrityError:
        uploads.discard(stored)
        earlier = _earlier_submission(form, token, actor)  # a concurrent POST of the same page won
        if earlier is None:
            raise
        return earlier
    except BaseException:
        uploads.discard(stored)
        raise
    return execution


def _earlier_submission(form: FormDefinition, token: str, actor: Actor) -> Execution | None:
    earlier = FormSubmission.objects.select_related("execution__process").filter(token=token).first()
    if earlier is None:
        return None
    if earlier.form_id != form.pk or earlier.actor_ref != actor.ref[:200]:
        raise InvalidParameters({NON_FIELD: ["This page is out of date; reload it and send the form again."]})
    return earlier.execution


def _check_files(
    specs: list[dict[str, Any]], files: Mapping[str, UploadedFile], shown: set[str]
) -> tuple[list[tuple[str, UploadedFile, uploads.Sniffed]], dict[str, list[str]]]:
    checked, errors = [], {}
    for spec in specs:
        name = spec["name"]
        upload = files.get(name)
        if spec.get("type") != FieldType.FILE or upload is None or name not in shown:
            continue
        try:
            sniffed = uploads.check(upload, name=upload.name or "", size=upload.size or 0,
                                    allowed_formats=spec.get("allowed_formats", ()),
                                    max_bytes=spec.get("max_file_size"))
        except ValidationError as exc:
            errors[name] = list(exc.messages)
            continue
        checked.append((name, upload, sniffed))
    return checked, errors


def _receipt_recipient(
    form: FormDefinition, submitter: Submitter, specs: list[dict[str, Any]], values: dict[str, Any]
) -> str:
    """Who hears that the form arrived: the signed-in user, else the e-mail the sender typed into the form."""
    if not form.confirmation_email:
        return ""
    if submitter.user.is_authenticated and submitter.user.email:
        return submitter.user.email
    from django.core.validators import validate_email

    for spec in specs:
        typed = values.get(spec["name"])
        if spec.get("type") == FieldType.EMAIL and isinstance(typed, str) and typed.strip():
            try:
                validate_email(typed.strip())
            except ValidationError:
                return ""
            return typed.strip()
    return ""


def _queue_receipt(form: FormDefinition, execution: Execution, recipient: str, tracking_url: str) -> None:
    from notifications.services import notification_queue

    lines = [f"We received your request “{form.title}”.", "", f"Reference: {execution.public_id}"]
    if execution.status == "awaiting_approval":
        lines.append("It is waiting for an approver's decision before it starts.")
    if form.success_message:
        lines += ["", form.success_message]
    if tracking_url:
        lines += ["", f"Follow it here: {tracking_url.replace('{id}', execution.public_id)}"]
    lines += ["", "You will get another e-mail when it is finished.", "", "— Heptora"]
    notification_queue(execution=execution, event_type="form.received", recipient=recipient,
                       subject=f"We received your request: {form.title} ({execution.public_id})",
                       body="\n".join(lines))


# --- Import and export ----------------------------------------------------------------------------------

EXPORT_FORMAT = "heptora-form"
EXPORT_VERSION = 1
FORM_KEYS = ("title", "description", "success_message", "confirmation_email", "access", "requires_approval",
             "is_active")
FIELD_KEYS = ("name", "label", "type", "required", "web_required", "on_web_form", "help_text", "placeholder",
              "default", "default_current_month", "profile_default", "choices", "min_length", "max_length", "regex",
              "regex_message", "min_value", "max_value", "decimal_places", "prefix", "allowed_formats",
              "max_file_size_mb", "show_if_field", "show_if_value", "rules")


def form_export(form: FormDefinition) -> dict[str, Any]:
    """The form as a JSON-ready dict (settings and fields; no ids), what form_import takes back."""
    users, groups = form_access_holders(form)
    fields = []
    for field in form.fields.all():
        exported = {}
        for key in FIELD_KEYS:
            value = getattr(field, key)
            if key in ("min_value", "max_value") and value is not None:
                value = int(value) if value == value.to_integral_value() else float(value)
            exported[key] = value
        fields.append(exported)
    return {
        "format": EXPORT_FORMAT, "version": EXPORT_VERSION, "slug": form.slug, "process": form.process.slug,
        **{key: getattr(form, key) for key in FORM_KEYS},
        "allowed_groups": [group.name for group in groups],
        "allowed_users": [user.get_username() for user in users],
        "fields": fields,
    }


def form_export_json(form: FormDefinition) -> str:
    return json.dumps(form_export(form), indent=2, ensure_ascii=False) + "\n"


def form_import(data: dict[str, Any], *, replace: bool = False) -> FormDefinition:
    """Create (or with ``replace`` overwrite) a form from form_export's shape; raises ValueError with a
    readable message on bad input, writing nothing."""
    if not isinstance(data, dict):
        raise ValueError("A form definition must be a JSON object.")
    if data.get("format", EXPORT_FORMAT) != EXPORT_FORMAT or data.get("version", EXPORT_VERSION) != EXPORT_VERSION:
        raise ValueError(f"This is not a Heptora form definition (format {EXPORT_FORMAT}, version {EXPORT_VERSION}).")
    known = {"format", "version", "slug", "process", "allowed_groups", "allowed_users", "fields", *FORM_KEYS}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"Unknown key(s): {', '.join(unknown)}.")
    for key in ("slug", "process", "title"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise ValueError(f"'{key}' is missing (a text is needed).")
    if not isinstance(data.get("fields", []), list):
        raise ValueError("'fields' must be a list.")
    process = Process.objects.filter(slug=data["process"]).first()
    if process is None:
        raise ValueError(f"There is no process '{data['process']}'.")
    users = _named_users(data.get("allowed_users", []))
    group_names = data.get("allowed_groups", [])
    if not isinstance(group_names, list) or not all(isinstance(n, str) and n.strip() for n in group_names):
        raise ValueError("'allowed_groups' must be a list of group names.")

    with transaction.atomic():
        form = FormDefinition.objects.select_for_update().filter(slug=data["slug"]).first()
        if form is not None and not replace:
            raise ValueError(f"A form with the slug '{data['slug']}' already exists; import with replace to "
                             "overwrite it.")
        other = FormDefinition.objects.filter(process=process).exclude(slug=data["slug"]).first()
        if other is not None:
            raise ValueError(f"The process '{process.slug}' already has a form ('{other.slug}').")
        form = form or FormDefinition(slug=data["slug"])
        form.process = process
        for key in FORM_KEYS:
            if key in data:
                setattr(form, key, data[key])
        _full_clean(form, "form", exclude=["process"])
        fields = _import_fields(data.get("fields", []))
        form.save()
        form.fields.all().delete()
        for position, field in enumerate(fields):
            field.form, field.position = form, position
        FormField.objects.bulk_create(fields)
        groups = [Group.objects.get_or_create(name=name.strip())[0] for name in group_names]
        form_grant_access(form, users=users, groups=groups)
    parameters.fields_cache_clear()  # bulk_create sends no signals (it renews again on commit by itself)
    return form


def _named_users(names: Any) -> list[Any]:
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError("'allowed_users' must be a list of user names.")
    found = {u.get_username(): u for u in get_user_model().objects.filter(username__in=names)}
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(f"There is no user named {', '.join(repr(n) for n in missing)}.")
    return [found[n] for n in names]


def _import_fields(raw_fields: list[Any]) -> list[FormField]:
    fields = []
    for number, raw in enumerate(raw_fields, start=1):
        if not isinstance(raw, dict):
            raise ValueError(f"Field {number} must be a JSON object.")
        unknown = sorted(set(raw) - set(FIELD_KEYS))
        if unknown:
            raise ValueError(f"Field {number}: unknown key(s) {', '.join(unknown)}.")
        raw = {"label": raw.get("name"), **raw} if not raw.get("label") else raw
        field = FormField(**{key: value for key, value in raw.items() if value is not None or key in (
            "default", "show_if_value", "min_length", "max_length", "min_value", "max_value", "decimal_places",
            "max_file_size_mb")})
        fields.append(field)
    names = [field.name for field in fields]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"Two fields are named {', '.join(duplicates)}.")
    for number, field in enumerate(fields, start=1):
        field.sibling_names = names
        _full_clean(field, f"field {number} ({field.name or 'no name'})", exclude=["form"])
    return fields


def _full_clean(obj: Any, what: str, *, exclude: list[str]) -> None:
    try:
        obj.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        details = "; ".join(f"{key}: {' '.join(messages)}" for key, messages in exc.message_dict.items())
        raise ValueError(f"In {what}: {details}") from None


def form_retry(execution: Execution, *, submitter: Submitter) -> Execution:
    """Start a failed or cancelled form request again, on the authority of the form it was sent with
    (someone who may use a form need not hold the process permission). Raises what execution_retry raises."""
    from forms_app.models import FormSubmission

    actor = submitter_actor(submitter)
    submission = FormSubmission.objects.select_related("form").filter(execution=execution).first()
    form = submission.form if submission else None
    if form is not None and form.is_active and form_can_use(submitter.user, form):
        return executions_services.execution_retry(
            execution=execution, actor=actor, source=ExecutionSource.FORM, authorized_by=f"form:{form.slug}",
            require_approval=form.requires_approval,
        )
    return executions_services.execution_retry(execution=execution, actor=actor, source=ExecutionSource.FORM)
