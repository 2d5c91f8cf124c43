"""A partner makes an API token in Chromium, uses it from a script, revokes it; and the API's docs
page renders from the vendored Swagger UI. Checked at 1280 and 390 px."""

from __future__ import annotations

import re

import requests
from playwright.sync_api import expect

from tests.e2e.browser import login, run_axe, scroll_width


def test_api_token_when_created_used_and_revoked_stops_working(page, world, portal_server, console, shot):
    login(page, world.partner_email)
    page.locator("details.account-menu summary").click()
    page.get_by_role("link", name="API tokens").click()
    expect(page.get_by_role("heading", name="API tokens", exact=True)).to_be_visible()

    page.get_by_label("Token name").fill("Registrar export")
    page.get_by_label("Expires after").select_option("30")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_text("it is shown only this once")).to_be_visible()
    secret = page.get_by_label("Token", exact=True).input_value()
    assert re.fullmatch(r"tip_[A-Za-z0-9_\-]{40,}", secret)
    shot(page, "api-tokens-created")

    answer = requests.get(
        f"{portal_server.url}/api/v1/partners", headers={"Authorization": f"Bearer {secret}"}, timeout=10
    )
    assert answer.status_code == 200
    assert [p["slug"] for p in answer.json()["items"]] == [world.partner_slug]

    page.goto("/account/api-tokens")
    expect(page.get_by_label("Token", exact=True)).to_have_count(0)  # never shown again
    row = page.locator("tbody tr", has_text="Registrar export")
    expect(row).to_contain_text("Active")
    expect(row.locator("td").nth(4)).not_to_have_text("never")  # last used: the script's request
    assert run_axe(page) == []

    row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("heading", name="Revoke the token “Registrar export”?")).to_be_visible()
    shot(page, "api-token-revoke-confirm")
    page.get_by_role("button", name="Revoke token").click()
    expect(page.locator(".flash-success")).to_contain_text("revoked")
    expect(page.locator("tbody tr", has_text="Registrar export")).to_contain_text("Revoked")

    refused = requests.get(
        f"{portal_server.url}/api/v1/partners", headers={"Authorization": f"Bearer {secret}"}, timeout=10
    )
    assert refused.status_code == 401
    assert refused.headers["Content-Type"].startswith("application/problem+json")

    page.set_viewport_size({"width": 390, "height": 844})
    assert scroll_width(page) <= 390
    shot(page, "api-tokens-390")
    assert console.errors == []


def test_api_docs_page_when_opened_renders_every_operation_offline(page, world, console, shot):
    page.route(re.compile(r"^https?://(?!127\.0\.0\.1|localhost)"), lambda route: route.abort())
    page.goto("/api/v1/docs")
    expect(page.get_by_role("heading", name=re.compile("Tuition Invoice Portal API"))).to_be_visible()
    expect(page.locator(".opblock").first).to_be_visible()
    assert page.locator(".opblock").count() >= 9
    shot(page, "api-docs")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "api-docs-390", full_page=False)
    assert scroll_width(page) <= 390
    assert console.errors == []
