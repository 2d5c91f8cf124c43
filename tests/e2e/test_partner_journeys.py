"""Partner journeys in Chromium with JavaScript on: upload, read a row's error, download the error
file, upload the corrected file; rows held for an unknown employee and their release by an admin."""

from __future__ import annotations

import csv
import io
import re

from playwright.sync_api import expect

from tests.e2e.browser import login

GOOD = [
    ("E100", "U-1", "Tuition", "1,234.50", "15.10.2026"),
    ("E101", "U-2", "Books & Materials", "89.99", "20.10.2026"),
]


def _upload(page, path) -> None:
    page.goto("/partner/")
    page.locator("#files").set_input_files(str(path))
    page.get_by_role("button", name="Upload").click()
    expect(page).to_have_url(re.compile(r"/partner/uploads/\d+$"))


def test_upload_with_bad_row_then_corrected_file_is_imported(page, world, tmp_path, shot):
    login(page, world.partner_email)
    bad = tmp_path / "october.csv"
    bad.write_bytes(world.csv(*GOOD, ("E102", "U-3", "Tutoring", "twelve", "21.10.2026")))
    _upload(page, bad)
    first_url = page.url

    badge = page.locator("#upload-status-badge")
    expect(badge).to_have_text("Needs review: 1 row rejected", timeout=30_000)
    problem = page.locator("#problem-rows tr", has_text="twelve")
    expect(problem).to_contain_text("4")  # the file's row number (after the header)
    expect(problem).to_contain_text(re.compile("amount", re.I))
    shot(page, "partner-upload-needs-review")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download the error file (CSV)").first.click()
    error_rows = list(csv.reader(io.StringIO(download.value.path().read_text(encoding="utf-8-sig"))))
    assert any("twelve" in ",".join(row) for row in error_rows), error_rows
    assert download.value.suggested_filename.endswith(".csv")
    expect(badge).to_be_visible()  # still the upload's page, no bytes swapped in

    fixed = tmp_path / "October.csv"
    fixed.write_bytes(world.csv(*GOOD, ("E102", "U-3", "Tutoring", "12.00", "21.10.2026")))
    _upload(page, fixed)
    expect(page.locator("#upload-status-badge")).to_have_text("Imported 3", timeout=30_000)
    expect(page.locator("#upload-counts")).to_contain_text("3")
    shot(page, "partner-upload-imported")
    new_id = page.url.rsplit("/", 1)[1]

    page.goto(first_url)
    expect(page.locator("#upload-status-badge")).to_have_text(f"Superseded by upload #{new_id}")
    expect(page.get_by_role("button", name=re.compile("^Import"))).to_have_count(0)


def test_rows_for_unknown_employees_are_held_then_released_by_admin(page, world, tmp_path, browser):
    login(page, world.partner_email)
    held = tmp_path / "new-starters.csv"
    held.write_bytes(
        world.csv(
            ("E900", "H-1", "Tuition", "700.00", "02.10.2026"),
            ("E900", "H-2", "Books & Materials", "40.00", "03.10.2026"),
        )
    )
    _upload(page, held)
    badge = page.locator("#upload-status-badge")
    expect(badge).to_have_text("Imported 0, 2 held for unknown employees", timeout=30_000)
    expect(badge).not_to_have_class(re.compile("tone-success"))
    expect(page.locator("#held-rows")).to_contain_text("E900")
    expect(page.locator("#held-next-step")).to_contain_text("wait for an administrator")
    upload_url = page.url

    admin = browser.new_context(base_url=world.server.url).new_page()
    login(admin, world.admin_email)
    admin.goto("/admin/quarantine")
    group = admin.locator("article", has_text=world.customer_code).filter(has_text="E900")
    group.get_by_label("Employee", exact=True).select_option("new")
    group.get_by_label("Name (for a new employee)").fill("Nova Starter")
    group.get_by_role("button", name="Release 2 row(s)").click()
    expect(admin.locator(".flash-success")).to_contain_text("Released 2 row(s) of E900")
    admin.context.close()

    page.goto(upload_url)
    expect(page.locator("#upload-status-badge")).to_have_text("Imported 2")
