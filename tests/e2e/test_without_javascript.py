"""The same journeys with JavaScript off: every form is a plain POST -> redirect -> GET."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import login


@pytest.fixture
def page(browser, portal_server):
    context = browser.new_context(base_url=portal_server.url, java_script_enabled=False)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def test_upload_without_javascript_lands_on_upload_page(page, world, tmp_path):
    login(page, world.partner_email)
    path = tmp_path / "plain.csv"
    path.write_bytes(world.csv(("E100", "N-1", "Tuition", "100.00", "01.10.2026")))
    page.locator("#files").set_input_files(str(path))
    page.get_by_role("button", name="Upload").click()
    expect(page).to_have_url(re.compile(r"/partner/uploads/\d+$"))
    for _ in range(30):  # no polling without JavaScript: the user reloads
        if page.locator("#upload-status-badge").inner_text() == "Imported 1":
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(page.locator("#upload-status-badge")).to_have_text("Imported 1")


def test_dispute_and_approve_without_javascript(page, world):
    number = world.invoice(
        [
            ("E100", "N-2", "Tuition", "300.00", "01.10.2026"),
            ("E101", "N-3", "Tutoring", "20.00", "02.10.2026"),
        ]
    )
    login(page, world.contact_email)
    page.get_by_role("link", name=number).click()
    row = page.locator("tr[id^=line-row-]", has_text="Person 101")
    line_id = row.get_attribute("id").removeprefix("line-row-")
    row.locator("summary", has_text="Dispute").click()  # a native <details>: no script needed
    page.locator(f"#dispute-comment-{line_id}").fill("Not taken.")
    page.locator(f"#dispute-comment-{line_id}").locator("xpath=ancestor::form").get_by_role(
        "button", name="Dispute this line"
    ).click()
    expect(page.locator("#line-results")).to_contain_text("Disputed: Not taken.")
    page.locator("#decision").get_by_role("button", name="Approve the undisputed lines").click()
    expect(page.locator(".flash-success")).to_contain_text("approved")
