"""The web chat in a real headless Chromium: sign in, type a command with a typo, answer the follow-up
question, press Confirm, and watch the progress and the result arrive from a real worker."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from executions.models import Execution, ExecutionStatus
from tests.conftest import PASSWORD, WorkerProcess, wait_for_status

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def chat_browser(browser: Any, live_server: Any) -> Iterator[Any]:
    """A fresh tab of the session's headless Chromium (tests/conftest.py: fails, never skips, without it)."""
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()


def test_a_person_chats_an_order_into_existence_and_sees_it_finish(
    live_server: Any, worker: WorkerProcess, staff_user: Any, chat_browser: Any
) -> None:
    from playwright.sync_api import expect

    page = chat_browser
    page.goto(f"{live_server.url}/chat/")
    page.get_by_label("User name").fill("sam")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/chat/")

    log = page.get_by_role("log")
    expect(page.locator("section.heptora-chat")).to_have_count(1)
    expect(log).to_have_attribute("aria-live", "polite")
    message = page.get_by_label("Message to Heptora")
    expect(message).to_be_focused()
    message.fill("proces ordr ORD-2024-001")
    message.press("Enter")

    expect(log).to_contain_text("Which Priority?")
    expect(page.get_by_role("button", name="High")).to_be_visible()
    message.fill("high")
    message.press("Enter")

    expect(log).to_contain_text("Order Processing: Order ID ORD-2024-001, Priority High.")
    page.get_by_role("button", name="Confirm").click()

    expect(log).to_contain_text(re.compile(r"Order Processing started \(ID: exec-[0-9a-f]{16}\)"))
    execution = wait_for_status(Execution.objects.get(), ExecutionStatus.SUCCESS, ExecutionStatus.FAILED)
    assert execution.status == ExecutionStatus.SUCCESS
    expect(log).to_contain_text(f"Order Processing ({execution.public_id}) is running.")
    expect(log).to_contain_text("Step 1/5 completed (20%).")
    expect(log).to_contain_text(re.compile(r"Order Processing completed in \d+\.\d s"))
    expect(log).to_contain_text(execution.result["summary"])
    assert execution.parameters == {"orderId": "ORD-2024-001", "priority": "High"}
    assert execution.actor_user == staff_user and execution.source == "chat"

    # The same conversation goes on in the embeddable widget on another page of the site.
    page.goto(f"{live_server.url}/chat/link/")
    page.add_script_tag(url="/chat/widget.js")
    launcher = page.get_by_role("button", name="Chat with Heptora")
    expect(launcher).to_have_attribute("aria-expanded", "false")
    launcher.click()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    widget_log = page.get_by_role("log")
    expect(widget_log).to_contain_text("Step 1/5 completed (20%).")  # restored from the conversation
    page.get_by_label("Message to Heptora").fill("hlep")
    page.get_by_label("Message to Heptora").press("Enter")
    expect(widget_log).to_contain_text("I can start processes and tell you how they go.")
    page.keyboard.press("Escape")
    expect(launcher).to_be_focused()
