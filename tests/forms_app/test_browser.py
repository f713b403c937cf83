"""The web forms in real headless Chromium (Debian's /usr/bin/chromium driven by Playwright's Python API),
against a real HTTP server (pytest-django's live_server) and a real Celery worker.

The browser is Debian's package, never a download; .ci/run installs it. These tests FAIL when it is
missing. Set HEPTORA_SCREENSHOT_DIR=docs/screenshots to refresh the README's screenshots.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from executions.models import Execution
from forms_app.models import FormDefinition
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture
def screenshot(tmp_path: Path) -> Callable[[Any, str], Path]:
    folder = Path(os.environ.get("HEPTORA_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)

    def take(tab: Any, name: str) -> Path:
        path = folder / name
        tab.screenshot(path=str(path), full_page=True)
        return path

    return take


def sign_in(tab: Any, username: str, next_url: str) -> None:
    tab.goto(f"/accounts/login/?next={next_url}")
    tab.fill("#id_username", username)
    tab.fill("#id_password", PASSWORD)
    tab.click("main button[type=submit]")
    tab.wait_for_url(f"**{next_url}")


def test_a_staff_user_fixes_an_inline_error_and_watches_the_order_succeed_live(
    page: Any, order_form: FormDefinition, staff_user: User, start_worker: Callable[..., Any],
    screenshot: Callable[[Any, str], Path],
) -> None:
    start_worker(env={"HEPTORA_DEMO_STEP_DELAY": "0.5"})  # slow enough to see the steps go by
    sign_in(page, "sam", "/forms/order-processing/")

    page.fill("#field-orderId", "ORD-1")
    page.fill("#field-customerName", "Acme Corp")
    page.select_option("#field-priority", "Medium")
    page.click("main button[type=submit]")

    error = page.locator("#field-orderId-error")
    assert "at least 10 characters" in error.inner_text()
    assert page.get_attribute("#field-orderId", "aria-invalid") == "true"
    page.wait_for_function("document.activeElement && document.activeElement.id === 'field-orderId'")
    assert page.input_value("#field-orderId") == "ORD-1"
    assert page.input_value("#field-customerName") == "Acme Corp"
    assert page.locator(".error-summary").is_visible()
    screenshot(page, "order-form-error.png")
    assert Execution.objects.count() == 0

    page.fill("#field-orderId", "ORD-2024-001")
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"/runs/exec-[0-9a-f]{16}/$"))
    page.evaluate("""() => {
        window.__sameDocument = true;
        window.__seen = [];
        const record = () => window.__seen.push(document.getElementById('run-progress-text').textContent);
        new MutationObserver(record).observe(document.getElementById('tracker'),
                                             {subtree: true, childList: true, characterData: true});
        record();
    }""")
    assert page.locator(".notice-success").is_visible()

    page.wait_for_selector("#run-status[data-status=success]", timeout=30_000)

    assert page.inner_text("#run-status") == "Success"
    assert page.inner_text("#run-progress-text") == "Step 5/5 — 100%"
    assert page.evaluate("window.__sameDocument") is True  # updated in place, never reloaded
    seen = page.evaluate("window.__seen")
    assert any(re.fullmatch(r"Step [1-4]/5 — \d+%", text) for text in seen), seen
    assert page.locator("#run-result").is_visible()
    assert "ORD-2024-001" in page.inner_text("#run-result")
    assert page.locator("#run-retry").is_hidden()
    screenshot(page, "tracking-success.png")
    [execution] = Execution.objects.all()
    assert execution.status == "success"
    assert page.url.endswith(f"/runs/{execution.public_id}/")


def test_special_instructions_appear_only_for_high_priority(
    page: Any, order_form: FormDefinition, staff_user: User
) -> None:
    sign_in(page, "sam", "/forms/order-processing/")
    instructions = page.locator("#field-specialInstructions")

    page.select_option("#field-priority", "High")
    assert instructions.is_visible()
    assert instructions.is_enabled()
    page.fill("#field-specialInstructions", "Leave at the back door")
    assert "characters left" in page.inner_text("#field-specialInstructions-counter")

    page.select_option("#field-priority", "Low")
    assert instructions.is_hidden()
    assert instructions.is_disabled()  # neither required nor sent while hidden

    page.select_option("#field-priority", "High")
    assert instructions.is_visible()
    assert page.input_value("#field-specialInstructions") == "Leave at the back door"


def test_a_department_manager_uploads_a_pdf_with_the_monthly_metrics(
    page: Any, department_manager: User
) -> None:
    sign_in(page, "dana", "/forms/monthly-metrics/")
    assert re.fullmatch(r"\d{4}-\d{2}", page.input_value("#field-month"))

    page.fill("#field-revenue", "125000.50")
    page.select_option("#field-department", "Sales")
    page.fill("#field-additionalNotes", "A good month.")
    page.set_input_files("#field-supportingDocument",
                         files=[{"name": "kpi.pdf", "mimeType": "application/pdf", "buffer": PDF}])
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"/runs/exec-[0-9a-f]{16}/$"))

    [execution] = Execution.objects.all()
    assert execution.process.slug == "monthly-report"
    assert execution.parameters["department"] == "Sales"
    assert execution.parameters["supportingDocument"]["name"] == "kpi.pdf"
    assert page.locator(".notice-success").is_visible()


def test_a_user_outside_the_role_gets_the_access_denied_page(
    page: Any, order_form: FormDefinition, outsider: User
) -> None:
    sign_in(page, "olga", "/forms/")

    response = page.goto("/forms/order-processing/")

    assert response.status == 403
    assert page.inner_text("h1") == "You cannot use this form"
    assert "Ask an administrator" in page.inner_text("main")
    assert page.locator("#field-orderId").count() == 0
