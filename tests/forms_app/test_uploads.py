"""A file sent with a form is judged by its content, not its name, and by its size; what is stored can be
handed on as a reference, and no caller can make a reference to a file we do not hold."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from executions.errors import InvalidParameters
from executions.models import Process
from forms_app import uploads
from forms_app.parameters import parameters_clean
from tests.forms_app.conftest import PDF, FormFactory, office_open_xml, ole2

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def check(name: str, content: bytes, formats: tuple[str, ...] = ("pdf", "excel", "word"), **kwargs: int) -> str:
    return uploads.check(io.BytesIO(content), name=name, size=len(content), allowed_formats=formats,
                         **kwargs).content_type


def refusal(name: str, content: bytes, formats: tuple[str, ...] = ("pdf", "excel", "word"), **kwargs: int) -> str:
    with pytest.raises(ValidationError) as caught:
        check(name, content, formats, **kwargs)
    return caught.value.messages[0]


@pytest.mark.parametrize(("name", "content", "content_type"), [
    ("kpi.pdf", PDF, "application/pdf"),
    ("kpi.docx", office_open_xml("word"), DOCX),
    ("kpi.xlsx", office_open_xml("xl"), XLSX),
    ("kpi.doc", ole2("WordDocument"), "application/msword"),
    ("kpi.xls", ole2("Workbook"), "application/vnd.ms-excel"),
    ("kpi", PDF, "application/pdf"),  # no extension: the content decides
])
def test_pdf_word_and_excel_files_are_recognised_by_their_content(name: str, content: bytes,
                                                                   content_type: str) -> None:
    assert check(name, content) == content_type


def test_a_file_named_pdf_that_is_not_a_pdf_is_refused() -> None:
    assert refusal("invoice.pdf", b"MZ\x90\x00 this is a program") == (
        "“invoice.pdf” is named like a PDF file, but its content is not PDF.")


def test_a_word_file_renamed_to_xlsx_is_refused() -> None:
    assert refusal("figures.xlsx", office_open_xml("word")) == (
        "“figures.xlsx” is named like a Excel file, but its content is not Excel.")


def test_a_zip_that_is_not_an_office_document_is_not_taken_for_one() -> None:
    assert refusal("kpi.docx", b"PK\x03\x04 not really a zip") == (
        "“kpi.docx” is named like a Word file, but its content is not Word.")


def test_a_format_the_field_does_not_allow_is_refused_with_the_allowed_ones() -> None:
    assert refusal("kpi.csv", b"month,revenue\n2024-11,100\n") == (
        "“kpi.csv” is a CSV file; allowed formats: PDF, Excel, Word.")


def test_an_unknown_kind_of_content_is_refused() -> None:
    assert refusal("tool", b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 40) == (
        "“tool” is not a file type we accept (PDF, Excel, Word).")


def test_a_file_over_the_site_limit_is_refused(settings) -> None:
    settings.HEPTORA_FORM_MAX_UPLOAD_MB = 1

    assert refusal("big.pdf", PDF + b"0" * (1024 * 1024)) == "“big.pdf” is 1.1 MB; the largest file allowed is 1 MB."


def test_a_field_limit_below_the_site_limit_applies() -> None:
    message = refusal("big.pdf", PDF + b"0" * (2 * 1024 * 1024), max_bytes=1024 * 1024)

    assert message == "“big.pdf” is 2.1 MB; the largest file allowed is 1 MB."


def test_an_empty_file_is_refused() -> None:
    assert refusal("empty.pdf", b"") == "“empty.pdf” is empty."


# --- Stored files and references ------------------------------------------------------------------------


def test_a_stored_file_gets_a_path_nobody_can_guess(media: Path) -> None:
    content = PDF
    sniffed = uploads.sniff(io.BytesIO(content))

    first = uploads.store(io.BytesIO(content), name="../../etc/kpi report.pdf", folder="monthly-metrics",
                          sniffed=sniffed)
    second = uploads.store(io.BytesIO(content), name="kpi report.pdf", folder="monthly-metrics", sniffed=sniffed)

    assert first["name"] == "kpi_report.pdf"
    assert uploads.STORED_PATH_RE.match(first["path"])
    assert first["path"] != second["path"]
    assert (media / first["path"]).read_bytes() == content
    assert (first["size"], first["contentType"]) == (len(content), "application/pdf")


@pytest.fixture
def with_document(make_form: FormFactory) -> Process:
    make_form([{"name": "document", "type": "file", "allowed_formats": ["pdf"]}])
    return Process.objects.get(slug="test-echo")


def test_a_reference_to_a_stored_upload_is_rebuilt_from_what_storage_holds(with_document: Process) -> None:
    stored = uploads.store(io.BytesIO(PDF), name="kpi.pdf", folder="test-echo", sniffed=uploads.sniff(io.BytesIO(PDF)))

    cleaned = parameters_clean(with_document, {"document": {**stored, "size": 1, "sha256": "forged"}})

    assert cleaned == {"document": stored}


@pytest.mark.parametrize(("path", "message"), [
    ("/etc/passwd", "That is not a file uploaded through a form."),
    ("form-uploads/../../settings.py", "That is not a file uploaded through a form."),
    ("form-uploads/test-echo/2024/11/AAAAAAAAAAAAAAAAAAAAAAAA/kpi.pdf",
     "That uploaded file does not exist (any more)."),
])
def test_an_api_caller_cannot_name_a_file_we_do_not_hold(with_document: Process, path: str, message: str) -> None:
    with pytest.raises(InvalidParameters) as caught:
        parameters_clean(with_document, {"document": {"name": "kpi.pdf", "path": path}})

    assert caught.value.field_errors == {"document": [message]}


def test_base64_content_is_checked_against_the_allowed_formats(with_document: Process) -> None:
    fake = {"name": "kpi.pdf", "contentBase64": base64.b64encode(b"GIF89a not a pdf").decode()}

    with pytest.raises(InvalidParameters) as caught:
        parameters_clean(with_document, {"document": fake})

    assert caught.value.field_errors == {
        "document": ["“kpi.pdf” is named like a PDF file, but its content is not PDF."]}
