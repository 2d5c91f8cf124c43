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


ADMIN_GROUPS = {
    "Billing": ["Invoices", "Disputes", "Deliveries"],
    "Data": ["Uploads", "Quarantine", "Partners", "Customers", "Employees"],
    "System": ["Users", "Jobs", "Audit log"],
}


def test_admin_side_navigation_at_1280_px_shows_every_group_and_link(page, world):
    login(page, world.admin_email)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav).to_be_visible()
    assert [t.strip() for t in nav.locator("h2").all_text_contents()] == list(ADMIN_GROUPS)
    for labels in ADMIN_GROUPS.values():
        for label in labels:
            expect(nav.get_by_role("link", name=label, exact=True)).to_be_visible()
    box = nav.bounding_box()
    assert box["x"] == 0 and box["width"] < 260  # a side bar, not a row of links
    expect(page.locator(".menu-button")).to_be_hidden()
    expect(nav.get_by_role("link", name="Overview")).to_have_attribute("aria-current", "page")


@pytest.mark.parametrize("role", ["admin", "partner", "customer"])
@pytest.mark.parametrize("width", [1280, 390])
def test_log_out_reachable_from_every_role_at_both_widths(page, world, role, width):
    page.set_viewport_size({"width": width, "height": 800})
    login(page, _email(world, role))
    page.locator("details.account-menu summary").click()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()


@pytest.mark.parametrize("role", ["partner", "customer"])
def test_partner_and_contact_get_a_short_top_bar_on_one_row(page, world, role):
    login(page, _email(world, role))
    nav = page.get_by_role("navigation", name="Main")
    items = nav.locator("li").all()
    middles = {round(i.bounding_box()["y"] + i.bounding_box()["height"] / 2) for i in items}
    assert len(middles) == 1 and len(items) <= 3
    assert page.locator("#sidenav").count() == 0


def test_admin_menu_button_at_390_px_opens_the_side_navigation(page, world):
    page.set_viewport_size({"width": 390, "height": 800})
    login(page, world.admin_email)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav).to_be_hidden()
    button = page.get_by_role("button", name="Menu", exact=True)
    expect(button).to_have_attribute("aria-expanded", "false")
    button.click()
    expect(nav).to_be_visible()
    expect(button).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Escape")  # closes it again, focus back on the button
    expect(nav).to_be_hidden()
    expect(button).to_be_focused()
    button.click()
    nav.get_by_role("link", name="Audit log").click()
    expect(page.locator("h1")).to_contain_text("Audit")
    expect(nav).to_be_hidden()  # the new page starts with the menu closed
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
        "/admin/partners",
        "/admin/employees",
        "/admin/jobs",
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


def _object_pages(page, role: str) -> list[str]:
    """The first invoice and upload pages a role works on (found through its own lists)."""
    found = []
    for list_path, wanted in (("/admin/invoices", "admin"), ("/customer/", "customer"),
                              ("/admin/uploads", "admin"), ("/partner/", "partner")):  # fmt: skip
        if role == wanted:
            page.goto(list_path)
            found.append(urlsplit(page.locator("main table a").first.get_attribute("href")).path)
    return found


@pytest.mark.parametrize("role", ["admin", "partner", "customer"])
def test_main_pages_as_role_screenshots_at_1280_and_390_px(page, populated, shot, role):
    """`make screenshots` keeps these in docs/screenshots/pages/: the shell as users see it."""
    login(page, _email(populated, role))
    paths = [*MAIN_PAGES[role], *_object_pages(page, role)]
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        for path in paths:
            page.goto(path)
            page.wait_for_load_state("networkidle")
            assert scroll_width(page) <= width, f"{path} scrolls sideways at {width} px"
            inside = path.strip("/").partition("/")[2]  # /admin/invoices/7 -> invoices/7
            slug = re.sub(r"[^a-z]+", "-", re.sub(r"\d+", "detail", inside)).strip("-") or "overview"
            shot(page, f"pages/{role}-{slug}-{width}", full_page=False)


def test_axe_runner_reports_a_real_violation(page, world):
    """The accessibility check above can fail: an image without alt text is reported."""
    login(page, world.contact_email)
    page.evaluate(
        "document.querySelector('main').append(Object.assign(new Image(), {src: '/static/favicon.svg'}))"
    )
    assert "image-alt" in {v["id"] for v in run_axe(page)}
