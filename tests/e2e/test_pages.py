"""Every page as each role in Chromium: no error answer, no console error, no sideways scrolling at
390 px (WCAG 1.4.10 reflow), the navigation fitting at 1280 px, downloads marked as downloads, and
axe-core finding no WCAG 2.1 A/AA violation on each role's main pages."""

from __future__ import annotations

import re
from urllib.parse import urldefrag, urlsplit

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from tests.e2e.browser import login, run_axe, scroll_width

ROWS = [
    ("E100", "P-1", "Tuition", "1,250.00", "05.10.2026"),
    ("E101", "P-2", "Books & Materials", "75.25", "12.10.2026"),
    ("E102", "P-3", "Tutoring", "310.00", "20.10.2026"),
]
HELD_AND_BAD = [
    ("E999", "Q-1", "Tuition", "500.00", "06.10.2026"),  # unknown employee: held in quarantine
    ("E100", "Q-2", "Tuition", "not money", "07.10.2026"),  # rejected: amount
]
# Links the crawl does not follow: they change state (log out) or are the same page again.
SKIP = re.compile(r"/logout$|/static/|[?&](page|after|before|cursor)=")
PAGES_PER_SHAPE = 2  # /admin/invoices/1 and /admin/invoices/2 have one shape; two of each suffice
MAX_PAGES = 80


@pytest.fixture
def populated(world):
    """One invoice waiting for a decision, one clean upload, one with a held and a rejected row."""
    world.invoice(ROWS)
    world.import_rows(HELD_AND_BAD, filename="october-fixes.csv", clean=False)
    return world


def _email(world, role: str) -> str:
    return {"admin": world.admin_email, "partner": world.partner_email, "customer": world.contact_email}[role]


def _shape(url: str) -> str:
    return re.sub(r"\d+", "N", urlsplit(url).path) + ("?" if urlsplit(url).query else "")


def _crawl(page, origin: str, start: str) -> list[str]:
    """Visit every page reachable by links from `start` (two of each URL shape); return them."""
    seen, shapes, queue, visited = {start}, {}, [start], []
    while queue and len(visited) < MAX_PAGES:
        url = queue.pop(0)
        try:
            response = page.goto(url)
        except PlaywrightError as exc:  # a file link without `download` starts a download here
            raise AssertionError(f"{url}: not a page ({exc.message.splitlines()[0]})") from exc
        assert response is not None and response.status < 400, (
            f"{url} answered {response and response.status}"
        )
        page.wait_for_load_state("networkidle")
        visited.append(url)
        for link in page.locator("a[href]").all():
            href = link.get_attribute("href") or ""
            absolute = urldefrag(page.evaluate("(h) => new URL(h, location.href).href", href)).url
            if not absolute.startswith(origin) or SKIP.search(absolute):
                continue
            if link.get_attribute("download") is not None:
                answer = page.request.get(absolute)
                assert answer.ok, f"download {absolute} answered {answer.status}"
                assert answer.headers.get("content-disposition", "").startswith("attachment"), absolute
                continue
            shape = _shape(absolute)
            if absolute not in seen and shapes.get(shape, 0) < PAGES_PER_SHAPE:
                seen.add(absolute)
                shapes[shape] = shapes.get(shape, 0) + 1
                queue.append(absolute)
    return visited


# What sticks out: the outermost elements reaching past the viewport's right edge.
WIDEST = """(width) => [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > width + 1
                 && !(e.parentElement && e.parentElement.getBoundingClientRect().right > width + 1))
    .slice(0, 4).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                     + '.' + [...e.classList].join('.')
                     + ' ' + Math.round(e.getBoundingClientRect().right) + 'px')"""


@pytest.mark.parametrize("role", ["admin", "partner", "customer"])
def test_every_page_as_role_loads_without_errors_and_reflows(page, populated, console, portal_server, role):
    login(page, _email(populated, role))
    start = page.url
    visited = _crawl(page, portal_server.url, start)
    assert len(visited) >= {"admin": 15, "partner": 4, "customer": 3}[role], visited
    assert console.errors == [], console.errors

    too_wide = {}
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        for url in visited:
            page.goto(url)
            if scroll_width(page) > width:
                too_wide[f"{width}px {url}"] = page.evaluate(WIDEST, width)
    assert too_wide == {}, too_wide


@pytest.mark.parametrize("role", ["admin", "partner", "customer"])
def test_navigation_at_1280_px_fits_on_one_row_with_log_out_reachable(page, world, role):
    login(page, _email(world, role))
    nav = page.get_by_role("navigation", name="Main")
    items = nav.locator(":scope > ul > li").all()
    boxes = [item.bounding_box() for item in items]
    middles = [b["y"] + b["height"] / 2 for b in boxes]
    assert max(middles) - min(middles) < 12, [(i.inner_text(), b) for i, b in zip(items, boxes, strict=True)]
    assert max(b["x"] + b["width"] for b in boxes) <= 1280
    nav.locator("details.account summary").click()
    expect(nav.get_by_role("button", name="Log out")).to_be_visible()


def test_navigation_at_390_px_reaches_every_admin_page(page, world):
    page.set_viewport_size({"width": 390, "height": 800})
    login(page, world.admin_email)
    nav = page.get_by_role("navigation", name="Main")
    nav.locator("summary", has_text="System").click()
    nav.get_by_role("link", name="Audit log").click()
    expect(page.locator("h1")).to_contain_text("Audit")
    assert scroll_width(page) <= 390


MAIN_PAGES = {
    "admin": [
        "/admin/",
        "/admin/invoices",
        "/admin/uploads",
        "/admin/quarantine",
        "/admin/audit",
        "/admin/customers",
        "/admin/users",
        "/admin/disputes",
        "/admin/deliveries",
    ],  # fmt: skip
    "partner": ["/partner/", "/partner/mappings"],
    "customer": ["/customer/"],
}


@pytest.mark.parametrize("role", ["admin", "partner", "customer"])
def test_main_pages_as_role_have_no_accessibility_violations(page, populated, role):
    login(page, _email(populated, role))
    pages = list(MAIN_PAGES[role])
    # ... and the first object page each role works on: an invoice or an upload.
    page.goto(pages[0] if role != "admin" else "/admin/invoices")
    if role in ("admin", "customer"):
        page.goto("/admin/invoices" if role == "admin" else "/customer/")
        link = page.locator("main table a").first
        pages.append(urlsplit(link.get_attribute("href")).path)
    if role in ("admin", "partner"):
        page.goto("/admin/uploads" if role == "admin" else "/partner/")
        link = page.locator("main table a").first
        pages.append(urlsplit(link.get_attribute("href")).path)
    found = {}
    for path in pages:
        page.goto(path)
        page.wait_for_load_state("networkidle")
        violations = run_axe(page)
        if violations:
            found[path] = violations
    assert found == {}, found


def test_axe_runner_reports_a_real_violation(page, world):
    """The accessibility check above can fail: an image without alt text is reported."""
    login(page, world.contact_email)
    page.evaluate(
        "document.querySelector('main').append(Object.assign(new Image(), {src: '/static/favicon.svg'}))"
    )
    assert "image-alt" in {v["id"] for v in run_axe(page)}
