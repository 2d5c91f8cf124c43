"""Customer contact journeys in Chromium with JavaScript on: log in, decide by keyboard, download."""

from __future__ import annotations

import csv
import io

from playwright.sync_api import expect
from pypdf import PdfReader

from tests.e2e.conftest import login

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
