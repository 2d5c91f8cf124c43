"""What an e2e test does in the browser: log in, run axe-core, measure the page, keep a download.

Plain functions over a Playwright `page`; the fixtures that start the portal and the browser are in
conftest.py.
"""

from __future__ import annotations

from pathlib import Path

from tests.factories import PASSWORD

AXE = Path(__file__).resolve().parent / "vendor" / "axe-core-4.14.1.min.js"


def login(page, email: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.locator("main").get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login" not in url)


def run_axe(page) -> list[dict]:
    """axe-core's violations on the current page (WCAG 2.1 A and AA rules)."""
    # Evaluated through the DevTools protocol, which the page's CSP does not govern (a <script> tag
    # would be refused by it, rightly).
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    return page.evaluate(
        """async () => {
            const result = await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']});
            return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' + n.failureSummary)}));
        }"""
    )


_AXE_SOURCE: list[str] = []


def _axe_source() -> str:
    if not _AXE_SOURCE:
        _AXE_SOURCE.append(AXE.read_text() + "\n;void 0")
    return _AXE_SOURCE[0]


def scroll_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def copy_download(download, tmp_path: Path) -> Path:
    target = tmp_path / download.suggested_filename
    download.save_as(str(target))
    return target
