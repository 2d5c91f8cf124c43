"""The admin follows one invoice through the audit log in Chromium, then verifies the chain."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.browser import login

ROWS = [
    ("E100", "A-1", "Tuition", "900.00", "05.10.2026"),
    ("E103", "A-2", "Tutoring", "120.00", "09.10.2026"),
]


def test_audit_log_filtered_by_invoice_number_shows_each_step_then_chain_verifies(page, world, browser, shot):
    number = world.invoice(ROWS)
    other = world.invoice([("E101", "A-3", "Tuition", "50.00", "05.11.2026")], period="2026-11")

    contact = browser.new_context(base_url=world.server.url).new_page()
    login(contact, world.contact_email)
    contact.get_by_role("link", name=number).click()
    contact.get_by_role("button", name="Approve $1,020.00").click()
    contact.locator("#confirm-dialog").get_by_role("button", name="Approve $1,020.00").click()
    expect(contact.locator(".flash-success")).to_contain_text("approved")
    contact.context.close()

    login(page, world.admin_email)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    page.get_by_label("Invoice number").fill(number)
    page.locator("#audit-filters").get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"[?&]invoice=" + re.escape(number)))

    events = page.locator("table#audit-events tbody")
    for action in ("invoice.generated", "invoice.viewed", "invoice.approved"):
        expect(events).to_contain_text(action)
    expect(events.locator("td.audit-subject").first).to_contain_text(f"Invoice {number}")
    expect(events).not_to_contain_text(other)
    approved = events.locator("tr", has_text="invoice.approved")
    expect(approved).to_contain_text(world.contact_email)
    shot(page, "audit-log-invoice")

    page.reload()  # the filter lives in the URL
    expect(page.get_by_label("Invoice number")).to_have_value(number)
    by_number = {row.split("\t")[0] for row in events.locator("tr").all_inner_texts()}

    with page.expect_download() as export:
        page.get_by_role("link", name="Export CSV").click()
    exported = export.value.path().read_text(encoding="utf-8-sig")
    assert exported.count("invoice.approved") == 1 and number in exported
    expect(page.locator("h1")).to_have_text("Audit log")  # still the page, no bytes swapped in

    page.get_by_role("link", name="Clear filters").click()
    expect(page).to_have_url(re.compile(r"/admin/audit$"))
    page.locator("#f-q").fill(number)
    page.locator("#audit-filters").get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"[?&]q=" + re.escape(number)))
    by_text = {row.split("\t")[0] for row in events.locator("tr").all_inner_texts()}
    assert by_number <= by_text  # the text search finds every event of the invoice too

    page.goto("/admin/")
    feed = page.locator("#latest-activity")
    expect(feed).to_contain_text("invoice.approved")
    expect(feed).not_to_contain_text("invoice.viewed")
    page.goto("/admin/audit")

    page.locator("#chain-status").get_by_role("button", name="Verify now").click()
    expect(page.locator("#chain-status")).to_contain_text("Intact")
