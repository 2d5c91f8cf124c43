"""Customer contact journeys in Chromium with JavaScript on: log in, decide by keyboard, download."""

from __future__ import annotations

import csv
import io
import re

from playwright.sync_api import expect
from pypdf import PdfReader

from tests.e2e.browser import login, scroll_width

ROWS = [
    ("E100", "K-1", "Tuition", "2,400.00", "05.10.2026"),
    ("E101", "K-2", "Books & Materials", "204.99", "12.10.2026"),
    ("E102", "K-3", "Tutoring", "150.00", "20.10.2026"),
]


def test_login_with_wrong_password_shows_message_then_logs_in(page, world, shot):
    page.goto("/login")
    page.get_by_label("Email").fill(world.contact_email)
    page.get_by_label("Password").fill("not the password")
    page.locator("main").get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    expect(page.get_by_label("Email")).to_have_value(world.contact_email)
    shot(page, "login-error", full_page=False)
    page.get_by_label("Password").fill(world.password)
    page.locator("main").get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{page.url.split('/login')[0]}/customer/")


def _open_invoice(page, world, number: str) -> None:
    login(page, world.contact_email)
    page.get_by_role("link", name=number).click()
    expect(page.locator("h1")).to_contain_text(number)


def test_approve_confirmation_by_keyboard_cancels_with_escape_and_confirms_with_enter(page, world):
    number = world.invoice(ROWS)
    _open_invoice(page, world, number)
    approve = page.get_by_role("button", name="Approve $2,754.99")
    dialog = page.locator("#confirm-dialog")

    approve.focus()
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"Approve {number} for $2,754.99?")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(approve).to_be_visible()  # nothing was sent

    approve.focus()
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Approve $2,754.99")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(".flash-success")).to_contain_text("approved")
    expect(page.get_by_role("button", name="Approve $2,754.99")).to_have_count(0)


def test_approved_invoice_documents_download_as_real_files(page, world, tmp_path, shot):
    number = world.invoice(ROWS)
    _open_invoice(page, world, number)
    page.get_by_role("button", name="Approve $2,754.99").click()
    page.locator("#confirm-dialog").get_by_role("button", name="Approve $2,754.99").click()
    pdf_link = page.get_by_role("link", name="Download PDF")
    expect(pdf_link).to_be_visible(timeout=60_000)  # the documents section follows the render job
    shot(page, "invoice-approved")

    with page.expect_download() as pdf_download:
        pdf_link.click()
    pdf_path = tmp_path / "invoice.pdf"
    pdf_download.value.save_as(pdf_path)
    assert pdf_download.value.suggested_filename.endswith(".pdf")
    text = "\n".join(p.extract_text() for p in PdfReader(pdf_path).pages)
    assert number in text
    assert "2,754.99" in text
    expect(page.locator("h1")).to_contain_text(number)  # the page is still the invoice, not bytes

    with page.expect_download() as csv_download:
        page.get_by_role("link", name="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(csv_download.value.path().read_text(encoding="utf-8-sig"))))
    assert len(rows) == 3
    assert {r.get("partner_reference") or r.get("reference") for r in rows} >= {"K-1", "K-2", "K-3"} or any(
        "K-1" in ",".join(r.values()) for r in rows
    )


REVIEW_ROWS = [
    ("E100", "L-1", "Tuition", "2,400.00", "05.10.2026"),
    ("E101", "L-2", "Books & Materials", "45.00", "06.10.2026"),
    ("E102", "L-3", "Tutoring", "150.00", "07.10.2026"),
    ("E103", "L-4", "Tuition", "980.00", "08.10.2026"),
    ("E104", "L-5", "Tutoring", "60.00", "09.10.2026"),
]


def _first_employee(page) -> str:
    return page.locator("#line-results tbody tr[id^=line-row-]").first.locator("td").first.inner_text()


def test_lines_filters_live_in_url_and_last_change_wins(page, world):
    number = world.invoice(REVIEW_ROWS)
    _open_invoice(page, world, number)
    count = page.locator("#lines-count")
    expect(count).to_contain_text("5 lines")

    page.get_by_label("Search employee name or id, course").fill("E10")
    page.get_by_label("Expense type").select_option("tutoring")
    expect(count).to_have_text("2 lines match")
    # Two sort changes in quick succession: the table follows the last one, as the control says.
    # (by amount Person 104 comes first, by date Person 102)
    page.get_by_label("Sort by").select_option("amount")
    page.get_by_label("Sort by").select_option("date")
    expect(page).to_have_url(re.compile(r"sort=date"))
    expect(page.locator("#line-results tbody tr[id^=line-row-]").first).to_contain_text("Person 102")

    page.reload()
    expect(page.get_by_label("Sort by")).to_have_value("date")
    expect(page.get_by_label("Expense type")).to_have_value("tutoring")
    expect(page.get_by_label("Search employee name or id, course")).to_have_value("E10")
    expect(count).to_have_text("2 lines match")
    assert _first_employee(page).startswith("Person 102")


def test_dispute_updates_decision_at_once_then_rest_is_approved(page, world, shot):
    number = world.invoice(REVIEW_ROWS)
    _open_invoice(page, world, number)
    decision = page.locator("#decision")
    expect(decision.get_by_role("button", name="Approve $3,635.00")).to_be_visible()

    row = page.locator("#line-results tr[id^=line-row-]", has_text="Person 101")
    line_id = row.get_attribute("id").removeprefix("line-row-")
    row.locator("summary", has_text="Dispute").click()
    comment = page.locator(f"#dispute-comment-{line_id}")
    expect(comment).to_have_accessible_name(re.compile("What is wrong with this line"))
    expect(comment).to_be_visible()
    assert comment.bounding_box()["width"] > 300  # a usable box, not 37 px
    page.get_by_role("button", name="Dispute this line").click()
    assert comment.evaluate("e => e.validity.valueMissing")  # the browser asks for the comment first
    expect(page.locator("#line-results")).not_to_contain_text("Disputed:")

    comment = page.locator(f"#dispute-comment-{line_id}")
    comment.fill("These books were returned in October.")
    page.get_by_role("button", name="Dispute this line").click()
    expect(page.locator("#line-results")).to_contain_text("Disputed: These books were returned in October.")
    approve_rest = decision.get_by_role("button", name="Approve the undisputed lines")
    expect(approve_rest).to_be_visible()  # no reload: the server sent the decision section along
    expect(decision.get_by_role("button", name="Approve $3,635.00")).to_have_count(0)
    expect(page.locator("#decision-summary")).to_contain_text("$45.00")
    shot(page, "invoice-review")
    assert scroll_width(page) <= 1280
    page.set_viewport_size({"width": 390, "height": 844})  # a contact on a phone
    assert scroll_width(page) <= 390
    shot(page, "invoice-review-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    approve_rest.click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_contain_text("without the 1 disputed line")
    dialog.get_by_role("button", name="Approve the undisputed lines").click()
    expect(page.locator(".flash-success")).to_contain_text("approved")
    expect(page.locator("#documents")).to_contain_text(re.compile("prepar|Download PDF|waiting", re.I))
    expect(page.get_by_role("link", name="Download PDF")).to_be_visible(timeout=60_000)
