"""Files sent with a web form: checked by their CONTENT (not only their name) and size, stored through Django's
default storage under a path nobody can guess, and handed to the process as a file reference::

    {"name": "kpi.pdf", "path": "form-uploads/monthly-metrics/2024/11/<24 random>/kpi.pdf", "size": 18342,
     "contentType": "application/pdf", "sha256": "…"}

The formats a field may allow are named as admins think of them: pdf, word (.docx, .doc), excel (.xlsx, .xls),
csv and image (PNG, JPEG). The magic numbers of these few formats are checked here by hand.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import secrets
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.utils import timezone
from django.utils.text import get_valid_filename

UPLOAD_ROOT = "form-uploads"
STORED_PATH_RE = re.compile(rf"^{UPLOAD_ROOT}/[-\w]{{1,100}}/\d{{4}}/\d{{2}}/[-\w]{{24}}/[^/\\]{{1,120}}$", re.ASCII)
FORMAT_LABELS = {"pdf": "PDF", "word": "Word", "excel": "Excel", "csv": "CSV", "image": "image (PNG or JPEG)"}
EXTENSION_FORMATS = {
    ".pdf": "pdf", ".doc": "word", ".docx": "word", ".xls": "excel", ".xlsx": "excel", ".csv": "csv",
    ".png": "image", ".jpg": "image", ".jpeg": "image",
}
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Sniffed:
    format: str
    content_type: str


def max_upload_bytes(spec_max: int | None = None) -> int:
    """A field's own limit, never above the site's HEPTORA_FORM_MAX_UPLOAD_MB."""
    site = settings.HEPTORA_FORM_MAX_UPLOAD_MB * 1024 * 1024
    return min(spec_max, site) if spec_max else site


def sniff(handle: IO[bytes]) -> Sniffed | None:
    """What the content is, judged from its bytes; None for anything we do not recognise."""
    handle.seek(0)
    head = handle.read(8)
    handle.seek(0)
    if head.startswith(b"%PDF-"):
        return Sniffed("pdf", "application/pdf")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image", "image/png")
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("image", "image/jpeg")
    if head.startswith(b"PK\x03\x04"):
        return _office_open_xml(handle)
    if head == OLE2_MAGIC:
        return _legacy_office(handle)
    return _text(handle)


def _office_open_xml(handle: IO[bytes]) -> Sniffed | None:
    try:
        with zipfile.ZipFile(handle) as archive:  # reads the central directory only; nothing is extracted
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    finally:
        handle.seek(0)
    if "[Content_Types].xml" not in names:
        return None
    if any(name.startswith("word/") for name in names):
        return Sniffed("word", "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
    if any(name.startswith("xl/") for name in names):
        return Sniffed("excel", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    return None


def _legacy_office(handle: IO[bytes]) -> Sniffed | None:
    """An OLE2 compound file: Word keeps a "WordDocument" stream, Excel a "Workbook" (or older "Book") one."""
    word, workbook, book = ("WordDocument".encode("utf-16-le"), "Workbook".encode("utf-16-le"),
                            "Book\x00".encode("utf-16-le"))
    tail = b""
    try:
        while chunk := handle.read(_CHUNK):
            window = tail + chunk
            if word in window:
                return Sniffed("word", "application/msword")
            if workbook in window or book in window:
                return Sniffed("excel", "application/vnd.ms-excel")
            tail = window[-32:]
    finally:
        handle.seek(0)
    return None


def _text(handle: IO[bytes]) -> Sniffed | None:
    sample = handle.read(_CHUNK)
    handle.seek(0)
    if not sample or b"\x00" in sample:
        return None
    try:
        text = sample.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 4:  # a multi-byte character cut by the sample's end is fine
            return None
        text = sample[: exc.start].decode("utf-8-sig")
    if any(ord(c) < 32 and c not in "\t\r\n\f" for c in text):
        return None
    return Sniffed("csv", "text/csv")


def _megabytes(size: int) -> str:
    """In MB with one decimal, rounded up: a file just over a 1 MB limit reads "1.1 MB", not "1 MB"."""
    tenths = math.ceil(size * 10 / (1024 * 1024))
    return f"{tenths // 10}.{tenths % 10}".removesuffix(".0") + " MB"


def check(handle: IO[bytes], *, name: str, size: int, allowed_formats: Iterable[str] = (),
          max_bytes: int | None = None) -> Sniffed:
    """The file's format, or ValidationError saying in a sentence why it is refused."""
    shown = os.path.basename(name) or "The file"
    limit = max_upload_bytes(max_bytes)
    if size > limit:
        raise ValidationError(f"“{shown}” is {_megabytes(size)}; the largest file allowed is {_megabytes(limit)}.",
                              code="too_large")
    if size == 0:
        raise ValidationError(f"“{shown}” is empty.", code="empty")
    allowed = list(allowed_formats)
    sniffed = sniff(handle)
    claimed = EXTENSION_FORMATS.get(os.path.splitext(name)[1].lower())
    allowed_words = ", ".join(FORMAT_LABELS[f] for f in allowed)
    if claimed and (sniffed is None or sniffed.format != claimed):
        raise ValidationError(
            f"“{shown}” is named like a {FORMAT_LABELS[claimed]} file, but its content is not "
            f"{FORMAT_LABELS[claimed]}.", code="content_mismatch")
    if sniffed is None:
        accepted = allowed_words or ", ".join(FORMAT_LABELS.values())
        raise ValidationError(f"“{shown}” is not a file type we accept ({accepted}).", code="unknown_type")
    if allowed and sniffed.format not in allowed:
        raise ValidationError(f"“{shown}” is a {FORMAT_LABELS[sniffed.format]} file; allowed formats: "
                              f"{allowed_words}.", code="format_not_allowed")
    return sniffed


def store(handle: Any, *, name: str, folder: str, sniffed: Sniffed) -> dict[str, Any]:
    """Save the (already checked) file under ``form-uploads/<folder>/<yyyy>/<mm>/<random>/<name>``."""
    safe_name = get_valid_filename(os.path.basename(name))[-120:] or "upload"
    now = timezone.now()
    path = f"{UPLOAD_ROOT}/{folder}/{now:%Y}/{now:%m}/{secrets.token_urlsafe(18)}/{safe_name}"
    digest = hashlib.sha256()
    handle.seek(0)
    while chunk := handle.read(_CHUNK):
        digest.update(chunk)
    handle.seek(0)
    saved = default_storage.save(path, File(handle, name=safe_name))
    return {"name": safe_name, "path": saved, "size": default_storage.size(saved),
            "contentType": sniffed.content_type, "sha256": digest.hexdigest()}


def discard(references: Iterable[dict[str, Any]]) -> None:
    """Delete stored files (a submission that did not start an execution leaves nothing behind)."""
    for reference in references:
        path = reference.get("path", "")
        if STORED_PATH_RE.match(path):
            default_storage.delete(path)


def stored_reference(value: dict[str, Any], *, allowed_formats: Iterable[str] = (),
                     max_bytes: int | None = None) -> dict[str, Any]:
    """Check a reference to a stored upload and rebuild it from what storage really holds.

    Only paths of our upload folder that exist are accepted: an API caller cannot name any other file, and
    size, type and checksum come from the stored bytes, not from the caller.
    """
    path = value.get("path")
    if not isinstance(path, str) or not STORED_PATH_RE.match(path) or ".." in path.split("/"):
        raise ValidationError("That is not a file uploaded through a form.", code="invalid_path")
    if not default_storage.exists(path):
        raise ValidationError("That uploaded file does not exist (any more).", code="missing")
    name = value.get("name") if isinstance(value.get("name"), str) else os.path.basename(path)
    with default_storage.open(path, "rb") as handle:
        size = default_storage.size(path)
        sniffed = check(handle, name=path, size=size, allowed_formats=allowed_formats, max_bytes=max_bytes)
        digest = hashlib.sha256()
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return {"name": name, "path": path, "size": size, "contentType": sniffed.content_type,
            "sha256": digest.hexdigest()}
