"""The web forms' domain functions: the ONE way views, admin, commands and other apps use forms.

Views stay thin: they call these and render. Every start goes through executions.services.execution_start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
    from django.core.files.uploadedfile import UploadedFile
    from django.db.models import QuerySet

    from executions.models import Execution
    from forms_app.models import FormDefinition


class FormNotFound(Exception):
    """No active form has that slug."""


@dataclass(frozen=True)
class Submitter:
    """Who sends a form: a signed-in user, or an anonymous visitor identified only by their session."""

    user: AbstractBaseUser | AnonymousUser
    session_key: str


def form_get(slug: str) -> FormDefinition:
    """The active form with ``slug`` (its process loaded), or :class:`FormNotFound`."""
    raise NotImplementedError


def form_can_use(user: AbstractBaseUser | AnonymousUser, form: FormDefinition) -> bool:
    """May ``user`` open and send ``form``? public: anyone; authenticated: any active user; restricted: the
    users and groups holding the ``forms_app.use_form`` object permission (django-guardian), and superusers."""
    raise NotImplementedError


def forms_usable_by(user: AbstractBaseUser | AnonymousUser) -> QuerySet[FormDefinition]:
    """The active forms ``user`` may use, for the /forms/ list."""
    raise NotImplementedError


def form_web_fields(form: FormDefinition) -> list[dict[str, Any]]:
    """The field dicts shown on the web form, in order (``on_web_form`` fields; see FormField.as_spec)."""
    raise NotImplementedError


def form_initial(form: FormDefinition, user: AbstractBaseUser | AnonymousUser) -> dict[str, Any]:
    """Initial values: each field's default, the current month where asked, and profile defaults (name,
    e-mail, department) for a signed-in user."""
    raise NotImplementedError


def form_submit(
    form: FormDefinition,
    *,
    data: dict[str, Any],
    files: dict[str, UploadedFile],
    submitter: Submitter,
    submission_token: str,
) -> Execution:
    """Validate and start: hidden (show_if) fields dropped, uploads checked by content and size and stored
    through Django storage as file references, then execution_start(source="form",
    authorized_by=f"form:{slug}", require_approval=form.requires_approval). The same ``submission_token``
    (one per rendered form) returns the first execution instead of starting a second one.

    Raises executions.errors.InvalidParameters (field errors; nothing written), FormNotFound, LaunchDenied,
    ProcessPaused.
    """
    raise NotImplementedError


def form_export(form: FormDefinition) -> dict[str, Any]:
    """The form as a JSON-ready dict (settings and fields; no ids), what form_import takes back."""
    raise NotImplementedError


def form_import(data: dict[str, Any], *, replace: bool = False) -> FormDefinition:
    """Create (or with ``replace`` overwrite) a form from form_export's shape; raises ValueError with a
    readable message on bad input, writing nothing."""
    raise NotImplementedError
