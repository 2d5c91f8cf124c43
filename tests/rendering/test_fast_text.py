"""fast_text: the faster glyph drawing writes exactly the bytes WeasyPrint's own function writes."""

import json
import subprocess
import sys

import pytest

from portal.rendering import fast_text, pdfa
from portal.rendering.csv_export import invoice_csv
from portal.rendering.pdf import invoice_html
from tests.factories import build_invoice

OUR = {"name": "Ëxample Benefits LLC", "address": ["1 Main St", "Springfield"]}
# Text that takes WeasyPrint's own path, line by line: an emoji (colour font or missing glyph),
# right-to-left script, combining marks, a private-use character (no glyph), an ellipsis, spacing.
UNUSUAL = """<html><body style="font-family: DejaVu Sans">
<p>Tuition 😀 for Zoë; مرحبا بالعالم; שלום; e\u0301t\u0301e\u0301; private \ue000 use</p>
<p style="white-space: nowrap; overflow: hidden; text-overflow: ellipsis; width: 30mm">
  a line far too long for its box, cut with an ellipsis</p>
<p style="letter-spacing: 2px; word-spacing: 5px">spaced out <sup>up</sup> <sub>down</sub> <b>bold</b></p>
<pre style="font-family: DejaVu Sans Mono">2026-10-03 State U  tuition  Café ☕ (Fall)  $1,200.00</pre>
</body></html>"""


def both_ways(html: str, csv_bytes: bytes = b"") -> tuple[bytes, bytes]:
    fast_text.uninstall()
    try:
        own = pdfa.write_pdfa(html, csv_bytes, filename_stem="x")
    finally:
        assert fast_text.install()
    return own, pdfa.write_pdfa(html, csv_bytes, filename_stem="x")


def test_fast_text_when_pinned_weasyprint_installs():
    """If a WeasyPrint upgrade changes the version, this fails: re-check fast_text against it."""
    assert fast_text.install()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_fast_text_invoice_pdf_is_byte_identical(app, billing, backend):
    for day in range(1, 29):
        billing.add(1000 * day - 50_000 * (day % 7 == 0), f"2026-10-{day:02d}", employee=f"E{day % 3 + 1}")
    billing.add(4500, "2026-09-20", employee="E2", partner="code-camp", expense_type="tutoring")
    invoice_id = build_invoice(app)
    with app.app_context():
        html, csv_bytes = invoice_html(invoice_id, our_details=OUR), invoice_csv(invoice_id)
    own, fast = both_ways(html, csv_bytes)
    assert fast == own


def test_fast_text_unusual_text_is_byte_identical():
    own, fast = both_ways(UNUSUAL)
    assert fast == own


def test_rendering_process_draws_with_fast_text(tmp_path):
    (tmp_path / "input.html").write_text(pdfa.WARM_UP_HTML)
    (tmp_path / "input.csv").write_bytes(b"a,b\n")
    (tmp_path / "params.json").write_text(json.dumps({"filename_stem": "x", "memory_mb": 1536}))
    done = subprocess.run(
        [sys.executable, "-I", pdfa.__file__, str(tmp_path)], capture_output=True, check=True, timeout=120
    )
    assert json.loads(done.stdout.splitlines()[-1])["fast_text"] is True
