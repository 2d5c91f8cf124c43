"""Admin journeys in Chromium with JavaScript on: generate a month's invoices, see form errors."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.browser import login

ROWS = [
    ("E100", "G-1", "Tuition", "1,500.00", "05.10.2026"),
    ("E101", "G-2", "Books & Materials", "89.90", "12.10.2026"),
]


def test_generate_now_when_run_finishes_lists_invoice_without_reload(page, world, shot):
    world.import_rows(ROWS)
    login(page, world.admin_email)
    page.goto("/admin/invoices")
    page.get_by_label("Customer", exact=True).select_option(world.customer_code)
    page.get_by_label("Period", exact=True).fill("2026-10")
    page.get_by_role("button", name="Generate now").click()
    expect(page.locator(".flash-success")).to_contain_text(
        f"Invoice run for {world.customer_code} 2026-10 queued"
    )
    page.evaluate("window.__sameDocument = true")  # a full reload would drop this

    number = f"{world.customer_code}-2026-10-1"
    expect(page.locator("#invoice-list").get_by_role("link", name=number)).to_be_visible(timeout=30_000)
    expect(page.locator("#runs")).to_contain_text(f"{world.customer_code} October\u00a02026")
    assert page.evaluate("window.__sameDocument === true")
    assert page.url.endswith("/admin/invoices")
    row = page.locator("#invoice-list tr", has=page.get_by_role("link", name=number))
    expect(row).to_contain_text("$1,589.90")
    shot(page, "admin-invoices-generated")


def test_generate_now_with_invalid_period_shows_error_next_to_field(page, world):
    login(page, world.admin_email)
    page.goto("/admin/invoices")
    page.get_by_label("Period", exact=True).fill("2026-13")
    page.get_by_role("button", name="Generate now").click()
    expect(page.locator("#period-error")).to_have_text("Write the period as YYYY-MM.")
    expect(page.get_by_label("Period", exact=True)).to_have_attribute("aria-invalid", "true")
    assert page.url.endswith("/admin/invoices")  # the address bar keeps the page, not the POST URL


def test_new_customer_empty_form_shows_each_missing_field(page, world):
    login(page, world.admin_email)
    page.goto("/admin/customers/new")
    page.get_by_label("Time zone").fill("")
    page.locator("main form").get_by_role("button").last.click()
    errors = page.locator(".field-error")
    expect(errors.first).to_be_visible()
    assert errors.count() >= 2, errors.all_inner_texts()
    expect(page.locator("h1")).to_contain_text(re.compile("customer", re.I))


def test_server_error_in_a_section_shows_dismissible_banner(page, world):
    """A 5xx answer is never swapped in silently: the banner says so and can be dismissed."""
    login(page, world.admin_email)
    page.goto("/admin/invoices")
    page.route("**/admin/invoices?*", lambda route: route.fulfill(status=500, body="boom"))
    page.evaluate("htmx.trigger(document.body, 'invoices-changed')")
    banner = page.locator("#error-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("error 500")
    expect(page.locator("#invoice-list")).to_be_visible()  # the section was not replaced
    banner.get_by_role("button", name="Dismiss").click()
    expect(banner).to_be_hidden()


def test_alias_added_from_an_unknown_customer_problem_imports_the_upload(page, world, shot):
    """A registrar writes the employer's name; the admin says once what it means, the file imports."""
    name = f"{world.customer_code.title()} Holdings Ltd."
    data = world.csv(("E100", "A-1", "Tuition", "1,250.00", "05.10.2026")).replace(
        world.customer_code.encode(), name.encode()
    )
    upload_id = world.upload_bytes(data, "registrar-october.csv")
    login(page, world.admin_email)
    page.goto(f"/admin/uploads/{upload_id}")
    problem = page.locator("#problem-rows")
    expect(problem).to_contain_text(f"'{name}' is not a known customer code")
    customer_name = world.customer_code[1:].lower()  # World names the customer "Customer <tag>"
    problem.get_by_label(f"“{name}” means").select_option(
        label=f"{world.customer_code} · Customer {customer_name}"
    )
    problem.get_by_role("button", name="Add alias and check again").click()
    expect(page.locator(".flash-success")).to_contain_text(f"'{name}' now means {world.customer_code}")
    expect(page.locator("#upload-status")).to_contain_text("Imported 1", timeout=30_000)
    shot(page, "admin-upload-alias-imported")
