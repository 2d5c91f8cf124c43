"""HTML + CSV -> PDF/A-3b bytes with WeasyPrint, and the rendering process the sandbox talks to.

Imports nothing from the app (no Flask, no database), so the rendering process starts fast and small.
It runs in one of two ways (`python -I pdfa.py ...`):

- `pdfa.py <workdir>`: one render. Reads input.html, input.csv and params.json from the folder and
  writes output.pdf there; prints the figures as one JSON line.
- `pdfa.py --serve <socket> <parent pid>`: the render server. Imports WeasyPrint once, then listens
  on a Unix socket and forks a child per request (socketserver's ForkingMixIn), so a render starts
  with WeasyPrint, Pango and fontconfig already loaded (about 0.4 s saved per invoice). Each child
  caps itself exactly like the one-shot process: RLIMIT_AS for memory, and an alarm that ends it if
  the client's own timeout did not. The server exits when its parent (the worker or the web
  process that started it) is gone.

The protocol, one JSON object per line: the client sends {"workdir", "filename_stem", "memory_mb",
"timeout"}; the child answers {"pid"} at once (so the client can kill it when time is up), then
{"ok": true, "seconds", "maxrss_kb"} or {"ok": false, "exit", "error"}.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import importlib.util
import io
import json
import math
import os
import resource
import signal
import socketserver
import sys
import time
import zlib
from pathlib import Path

PDF_VARIANT = "pdf/a-3b"
ZLIB_LEVEL = 6  # see set_compression_level
EXIT_OUT_OF_MEMORY = 3
EXIT_FAILED = 4
READY = "ready"
# The invoice template's font (rendering/invoice.html), regular and bold.
WARM_UP_HTML = (
    "<html><head><title>warm-up</title></head><body style='font-family: DejaVu Sans'><p>a <b>b</b></p>"
    "<pre style='font-kerning: none; font-variant-ligatures: none'>c\u2003<b>d</b></pre></body></html>"
)
# The server looks for its parent this often (seconds), and between requests reaps its children.
POLL_SECONDS = 0.5


def _parse_w3c(value: str | None) -> dt.datetime:
    if not value:
        return dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def write_pdfa(html: str, csv_bytes: bytes, *, filename_stem: str) -> bytes:
    """Lay out `html` and write a PDF/A-3b with `csv_bytes` embedded as `<filename_stem>.csv`.

    Deterministic: the dates inside (document and attachment) come from the HTML's dcterms.created,
    and the file identifier is a hash of the content, so the same input gives the same bytes.
    """
    import weasyprint  # heavy (Pango, fonts): loaded by the rendering process only, never by web

    set_compression_level()
    install_fast_text()
    document = weasyprint.HTML(string=html).render(pdf_variant=PDF_VARIANT)
    stamp = _parse_w3c(document.metadata.created)
    attachment = weasyprint.Attachment(
        file_obj=io.BytesIO(csv_bytes),
        name=f"{filename_stem}.csv",
        description=f"Line items of {filename_stem} (CSV)",
        created=stamp,
        modified=stamp,
        # PDF/A-3 AFRelationship: the CSV carries the same data as the pages, for machines.
        relationship="Data",
    )
    return document.write_pdf(pdf_variant=PDF_VARIANT, attachments=[attachment])


class _Zlib:
    """zlib for pydyf, with our compression level in place of the level 9 it asks for."""

    compress = staticmethod(zlib.compress)

    @staticmethod
    def compressobj(level=-1, *args, **kwargs):
        return zlib.compressobj(ZLIB_LEVEL, *args, **kwargs)


def set_compression_level() -> None:
    """Have pydyf (WeasyPrint's PDF writer) compress page streams at ZLIB_LEVEL instead of 9.

    pydyf 0.13 hard-codes zlib level 9, which took 0.08 of 0.6 s for a 1,000-line invoice; level 6
    takes 0.015 s for a file 8% larger (bench/pdf.py). pydyf has no option for it, so its module's
    `zlib` is swapped for a wrapper; tests/rendering check that the swap still takes effect.
    """
    import pydyf  # WeasyPrint's PDF writer: heavy, rendering process only

    if getattr(pydyf, "zlib", None) is zlib:
        pydyf.zlib = _Zlib


def install_fast_text() -> bool:
    """Draw text lines with fast_text.py (same bytes, about a fifth less render time); True if on.

    The rendering process runs this file as a script (`python -I`, so its folder is not on the
    path, and it must not import the app package): there fast_text.py is loaded by its path.
    """
    if __package__:  # imported as portal.rendering.pdfa: the app's process, or tests
        from portal.rendering import fast_text
    else:
        fast_text = sys.modules.get("fast_text")
        if fast_text is None:
            spec = importlib.util.spec_from_file_location(
                "fast_text", Path(__file__).with_name("fast_text.py")
            )
            fast_text = importlib.util.module_from_spec(spec)
            sys.modules["fast_text"] = fast_text
            spec.loader.exec_module(fast_text)
    return fast_text.install()


def cap_memory(memory_mb: int | None) -> None:
    """Cap this process's address space; allocations beyond it fail (MemoryError in Python)."""
    if memory_mb:
        limit = int(memory_mb) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def render_workdir(workdir: Path, filename_stem: str) -> dict:
    """Render input.html + input.csv of `workdir` into output.pdf; returns the figures.

    Raises MemoryError beyond the memory cap, or whatever WeasyPrint raised.
    """
    start = time.perf_counter()
    fast = install_fast_text()
    pdf = write_pdfa(
        (workdir / "input.html").read_text(encoding="utf-8"),
        (workdir / "input.csv").read_bytes(),
        filename_stem=filename_stem,
    )
    (workdir / "output.pdf").write_bytes(pdf)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"seconds": time.perf_counter() - start, "maxrss_kb": usage.ru_maxrss, "fast_text": fast}


def near_memory_cap(memory_mb: int | None) -> bool:
    """Whether this process's address space came within 5% of the cap (Linux /proc; else False).

    A C library that fails to allocate does not always raise MemoryError (cffi may report a
    SystemError), so a failure this close to the cap is reported as lack of memory.
    """
    if not memory_mb:
        return False
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("VmPeak:"):
            return int(line.split()[1]) >= memory_mb * 1024 * 0.95
    return False


def render_reporting(workdir: Path, filename_stem: str, memory_mb: int | None) -> tuple[int, dict]:
    """`render_workdir` with failures turned into (exit code, message) for the parent to report."""
    try:
        return 0, render_workdir(workdir, filename_stem)
    except MemoryError:
        return EXIT_OUT_OF_MEMORY, {"error": "out of memory"}
    except Exception as exc:  # reported to the parent, which raises RenderError with it
        if near_memory_cap(memory_mb):
            return EXIT_OUT_OF_MEMORY, {"error": f"out of memory ({type(exc).__name__}: {exc})"}
        return EXIT_FAILED, {"error": f"{type(exc).__name__}: {exc}"}


def render_in_this_process(workdir: Path, filename_stem: str, memory_mb: int | None) -> tuple[int, dict]:
    """What both kinds of rendering process do: cap our own memory first, then render and report.

    The cyclic garbage collector is off: a render builds many objects and few cycles, and the
    process ends with it, so the collector only costs time (about 8%, bench/pdf.py); RLIMIT_AS
    bounds the memory.
    """
    gc.disable()
    cap_memory(memory_mb)
    return render_reporting(workdir, filename_stem, memory_mb)


def run_once(workdir: Path) -> int:
    """The one-shot child: render as params.json says; figures as one JSON line."""
    params = json.loads((workdir / "params.json").read_text())
    code, figures = render_in_this_process(workdir, params["filename_stem"], params.get("memory_mb"))
    if code:
        sys.stderr.write(figures["error"] + "\n")
        return code
    print(json.dumps(figures))
    return 0


class RenderRequestHandler(socketserver.StreamRequestHandler):
    """One render, in a child forked for this connection (it exits when this returns)."""

    def handle(self):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the server's own handler is not for us
        request = json.loads(self.rfile.readline())
        self._answer({"pid": os.getpid()})
        # The client kills us when its timeout passes; the alarm ends us if the client is gone.
        timeout = request.get("timeout")
        if timeout:
            signal.alarm(math.ceil(float(timeout)) + 1)
        code, figures = render_in_this_process(
            Path(request["workdir"]), request["filename_stem"], request.get("memory_mb")
        )
        self._answer({"ok": code == 0, "exit": code, **figures})

    def _answer(self, message: dict) -> None:
        self.wfile.write(json.dumps(message).encode() + b"\n")
        self.wfile.flush()


class RenderServer(socketserver.ForkingMixIn, socketserver.UnixStreamServer):
    timeout = POLL_SECONDS  # handle_request() returns this often, so the loop can look around
    block_on_close = False


def serve(socket_path: str, parent_pid: int) -> int:
    """Preload WeasyPrint, listen on `socket_path`, serve until the parent process is gone."""
    # A first small render loads the fonts and Pango's font map, which every child then inherits.
    write_pdfa(WARM_UP_HTML, b"", filename_stem="warm-up")
    gc.freeze()  # what we have now is never garbage: children need neither scan nor copy it
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    with RenderServer(socket_path, RenderRequestHandler) as server:
        print(READY, flush=True)
        try:
            while not stopping and os.getppid() == parent_pid:
                server.handle_request()
                server.collect_children()
        finally:
            Path(socket_path).unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # the folder made for the socket, if now empty
                Path(socket_path).parent.rmdir()
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[1] == "--serve":
        return serve(argv[2], int(argv[3]))
    return run_once(Path(argv[1]))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
