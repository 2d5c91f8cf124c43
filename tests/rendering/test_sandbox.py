"""The rendering sandbox: a render beyond its time or memory cap fails with RenderError, never hangs."""

import io
import time

import pytest
from pypdf import PdfReader

from portal.rendering.sandbox import RenderError, render_pdf_capped

SMALL = "<html><head><title>t</title></head><body><p>Hello</p></body></html>"


def big_html(rows):
    body = "".join(f"<tr><td>{n}</td><td>Line {n} description</td><td>$1.00</td></tr>" for n in range(rows))
    return f"<html><head><title>big</title></head><body><table>{body}</table></body></html>"


def test_render_pdf_capped_when_within_caps_returns_pdf_with_attachment():
    result = render_pdf_capped(SMALL, b"a,b\r\n1,2\r\n", filename_stem="T-1", timeout=60, memory_mb=1536)
    assert PdfReader(io.BytesIO(result.pdf)).attachments == {"T-1.csv": [b"a,b\r\n1,2\r\n"]}
    assert result.peak_rss_kb > 0


def test_render_pdf_capped_when_over_time_cap_raises_render_error_quickly():
    start = time.monotonic()
    with pytest.raises(RenderError, match=r"took longer than 0.5 s \(RENDER_TIMEOUT_SECONDS\)"):
        render_pdf_capped(big_html(5000), b"", filename_stem="SLOW", timeout=0.5, memory_mb=1536)
    assert time.monotonic() - start < 5


def test_render_pdf_capped_when_over_memory_cap_raises_render_error():
    with pytest.raises(RenderError, match=r"HUGE .*(more than 200 MB|memory cap 200 MB)"):
        render_pdf_capped(big_html(20000), b"", filename_stem="HUGE", timeout=120, memory_mb=200)
