"""The rendering sandbox: a render beyond its time or memory cap fails with RenderError, never hangs.

Both ways of rendering are held to the same caps: through the render server (a preloaded process
that forks a child per render) and one-shot (a fresh interpreter per render).
"""

import io
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pypdf import PdfReader

from portal.rendering import sandbox
from portal.rendering.sandbox import RenderError, render_pdf_capped

SMALL = "<html><head><title>t</title></head><body><p>Hello</p></body></html>"
WAYS = pytest.mark.parametrize("use_server", [True, False], ids=["server", "one-shot"])
ROOT = Path(__file__).resolve().parents[2]


def big_html(rows):
    body = "".join(f"<tr><td>{n}</td><td>Line {n} description</td><td>$1.00</td></tr>" for n in range(rows))
    return f"<html><head><title>big</title></head><body><table>{body}</table></body></html>"


def _gone(pid, within=10.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


@WAYS
def test_render_pdf_capped_when_within_caps_returns_pdf_with_attachment(use_server):
    result = render_pdf_capped(
        SMALL, b"a,b\r\n1,2\r\n", filename_stem="T-1", timeout=60, memory_mb=1536, use_server=use_server
    )
    assert PdfReader(io.BytesIO(result.pdf)).attachments == {"T-1.csv": [b"a,b\r\n1,2\r\n"]}
    assert result.peak_rss_kb > 0


@WAYS
def test_render_pdf_capped_when_over_time_cap_raises_render_error_quickly(use_server):
    start = time.monotonic()
    with pytest.raises(RenderError, match=r"took longer than 0.5 s \(RENDER_TIMEOUT_SECONDS\)"):
        render_pdf_capped(
            big_html(5000), b"", filename_stem="SLOW", timeout=0.5, memory_mb=1536, use_server=use_server
        )
    assert time.monotonic() - start < 5


@WAYS
def test_render_pdf_capped_when_over_memory_cap_raises_render_error(use_server):
    with pytest.raises(RenderError, match=r"HUGE .*(more than 200 MB|memory cap 200 MB)"):
        render_pdf_capped(
            big_html(20000), b"", filename_stem="HUGE", timeout=120, memory_mb=200, use_server=use_server
        )


@pytest.mark.parametrize("way", [sandbox._render_on_server, sandbox._render_one_shot])
def test_render_when_it_fails_reports_why_and_the_server_keeps_serving(way, tmp_path):
    (tmp_path / "input.html").write_text(SMALL)  # and no input.csv
    with pytest.raises(RenderError, match=r"rendering BAD failed: FileNotFoundError: .*input\.csv"):
        way(tmp_path, "BAD", 60, 1536)
    assert render_pdf_capped(SMALL, b"", filename_stem="OK", timeout=60, use_server=True).pdf[:5] == b"%PDF-"


def test_server_and_one_shot_give_the_same_bytes():
    html = big_html(300)
    csv = b"number,amount\r\n1,1.00\r\n"
    by_server = render_pdf_capped(html, csv, filename_stem="SAME", timeout=60, use_server=True)
    one_shot = render_pdf_capped(html, csv, filename_stem="SAME", timeout=60, use_server=False)
    assert by_server.pdf == one_shot.pdf


def test_server_when_a_render_times_out_kills_only_that_render():
    server = sandbox.start_server()
    with pytest.raises(RenderError, match="took longer"):
        render_pdf_capped(big_html(5000), b"", filename_stem="SLOW", timeout=0.5, use_server=True)
    assert sandbox.start_server() is server and server.running()
    # The killed child is reaped, not left running.
    children = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(server.process.pid)], capture_output=True, text=True
    ).stdout.split()
    deadline = time.monotonic() + 5
    while children and time.monotonic() < deadline:
        time.sleep(0.1)
        children = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(server.process.pid)], capture_output=True, text=True
        ).stdout.split()
    assert children == []
    assert render_pdf_capped(SMALL, b"", filename_stem="NEXT", timeout=60, use_server=True).pdf


def test_server_when_killed_is_replaced_by_the_next_render(caplog):
    first = sandbox.start_server()
    first.process.kill()
    first.process.wait()
    with caplog.at_level(logging.INFO, logger="portal.rendering.sandbox"):
        result = render_pdf_capped(SMALL, b"", filename_stem="AGAIN", timeout=60, use_server=True)
    assert result.pdf[:5] == b"%PDF-"
    second = sandbox.start_server()
    assert second is not first and second.running()
    assert "rendered AGAIN through the render server" in caplog.text


def test_server_when_it_cannot_start_renders_one_shot(monkeypatch, caplog):
    sandbox.stop_server()
    monkeypatch.setattr(sandbox, "SERVER_START_SECONDS", 0)  # it never gets to say it is ready
    with caplog.at_level(logging.INFO, logger="portal.rendering.sandbox"):
        result = render_pdf_capped(SMALL, b"", filename_stem="FALLBACK", timeout=60, use_server=True)
    assert result.pdf[:5] == b"%PDF-"
    assert "render server unavailable (the render server did not start" in caplog.text
    assert "rendered FALLBACK one-shot" in caplog.text


def test_server_in_a_forked_child_is_shared_not_restarted():
    """worker.py starts the server, then forks a work horse per job: the horse uses its parent's."""
    server = sandbox.start_server()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the "work horse"
        code = 1
        try:
            result = render_pdf_capped(SMALL, b"", filename_stem="HORSE", timeout=60, use_server=True)
            same = sandbox.start_server() is server and sandbox._server.owner_pid != os.getpid()
            code = 0 if result.pdf[:5] == b"%PDF-" and same else 2
        finally:
            os.write(write, str(code).encode())
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.read(read, 10) == b"0" and os.waitstatus_to_exitcode(status) == 0
    assert server.running()


def test_server_when_its_parent_exits_stops_too():
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from portal.rendering import sandbox; print(sandbox.start_server().process.pid, flush=True);"
        "import os; os._exit(0)"  # no atexit clean-up: as if the worker were killed
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(ROOT)], capture_output=True, text=True, timeout=60
    )
    server_pid = int(done.stdout.split()[-1])
    assert _gone(server_pid)


def test_server_when_stopped_by_sigterm_removes_its_socket():
    sandbox.stop_server()
    server = sandbox.start_server()
    os.kill(server.process.pid, signal.SIGTERM)
    server.process.wait(timeout=10)
    assert not os.path.exists(server.socket_path)
    assert not server.running()


def test_page_streams_are_compressed_at_our_level_not_pydyf_s_level_9():
    """pdfa.set_compression_level swaps pydyf's zlib; if a pydyf upgrade bypasses it, this fails."""
    import zlib

    from portal.rendering import pdfa

    pdf = render_pdf_capped(big_html(200), b"", filename_stem="Z", timeout=60).pdf
    contents = PdfReader(io.BytesIO(pdf)).pages[0]["/Contents"].get_object()
    raw = contents._data  # the stored (compressed) bytes
    assert contents["/Filter"] == "/FlateDecode"
    assert raw == zlib.compress(zlib.decompress(raw), pdfa.ZLIB_LEVEL)
    assert raw != zlib.compress(zlib.decompress(raw), 9)


def test_revive_server_restarts_a_dead_server_of_this_process_only():
    server = sandbox.start_server()
    sandbox.revive_server()  # alive: nothing happens
    assert sandbox.start_server() is server
    server.process.kill()
    server.process.wait()
    sandbox.revive_server()
    revived = sandbox._server
    assert revived is not server and revived.running()
    sandbox.stop_server()
    sandbox.revive_server()  # none started here any more: stays none
    assert sandbox._server is None
