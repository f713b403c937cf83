"""Shared pieces of the web form tests: forms built as an admin would, files as people send them."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, Group, User
from django.core.files.uploadedfile import SimpleUploadedFile

from executions.models import Process
from forms_app import demo, services
from forms_app.models import FormAccess, FormDefinition, FormField
from forms_app.parameters import fields_cache_clear
from forms_app.services import Submitter
from tests.conftest import PASSWORD


@pytest.fixture(autouse=True)
def fresh_cache(db: None) -> Iterator[None]:
    """Compiled form definitions live in the cache: no test sees another's (rolled back) forms. Only those
    keys go: the cache shares Redis with the broker, whose queues a test worker may be reading."""
    fields_cache_clear()
    yield
    fields_cache_clear()


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def stored_files(media: Path) -> list[str]:
    return sorted(str(p.relative_to(media)) for p in media.rglob("*") if p.is_file()) if media.exists() else []


FormFactory = Callable[..., FormDefinition]


@pytest.fixture
def make_form(db: None) -> FormFactory:
    """``make_form(fields, process="test-echo", **settings)``: a form with ``fields`` (FormField values)."""

    def make(fields: list[dict[str, Any]], *, process: str = "test-echo", **settings: Any) -> FormDefinition:
        values = {"slug": process, "title": f"Form for {process}", **settings}
        form = FormDefinition.objects.create(process=Process.objects.get(slug=process), **values)
        for position, field in enumerate(fields):
            FormField.objects.create(form=form, position=position, **{"label": field["name"], **field})
        return form

    return make


def as_user(user: User | None, session_key: str = "session-1") -> Submitter:
    return Submitter(user=user or AnonymousUser(), session_key=session_key)


# --- Files ----------------------------------------------------------------------------------------------

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def office_open_xml(part: str) -> bytes:
    """A minimal .docx (part "word") or .xlsx (part "xl"): a zip with [Content_Types].xml and its parts."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(f"{part}/{'document' if part == 'word' else 'workbook'}.xml", "<x/>")
    return buffer.getvalue()


def ole2(stream: str) -> bytes:
    """A legacy .doc ("WordDocument") or .xls ("Workbook"): OLE2 header, then the directory entry's name."""
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504 + stream.encode("utf-16-le") + b"\x00" * 64


def upload(name: str, content: bytes, content_type: str = "application/octet-stream") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=content_type)


# --- The demo forms, as the browser and view tests use them ---------------------------------------------


@pytest.fixture
def forms(db: None) -> dict[str, FormDefinition]:
    demo.seed(lambda line: None)
    return {form.slug: form for form in FormDefinition.objects.all()}


@pytest.fixture
def order_form(forms: dict[str, FormDefinition], staff_user: User) -> FormDefinition:
    """The order form, for the Staff role only."""
    form = forms["order-processing"]
    form.access = FormAccess.RESTRICTED
    form.save(update_fields=["access"])
    services.form_grant_access(form, users=[], groups=[Group.objects.get(name="Staff")])
    return form


@pytest.fixture
def department_manager(forms: dict[str, FormDefinition]) -> User:
    """A member of Department Managers, the only role the monthly metrics form is for."""
    role = Group.objects.get_or_create(name="Department Managers")[0]
    form = forms["monthly-metrics"]
    form.access = FormAccess.RESTRICTED
    form.save(update_fields=["access"])
    services.form_grant_access(form, users=[], groups=[role])
    user = User.objects.create_user("dana", "dana@example.com", PASSWORD, first_name="Dana", last_name="Lee")
    user.groups.add(role)
    return user
