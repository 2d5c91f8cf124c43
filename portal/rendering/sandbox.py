"""Runs the PDF render in a child process with a time cap and a memory cap (RLIMIT_AS).

A huge or hostile invoice can then only fail its own render with RenderError: it cannot exhaust the
worker's memory or hold its job forever. Input and output pass through files in a temporary folder.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from portal.rendering import pdfa

DEFAULT_TIMEOUT_SECONDS = 300
DEFAULT_MEMORY_MB = 1536
CHILD = Path(pdfa.__file__)


class RenderError(RuntimeError):
    """The PDF could not be rendered within its caps (or at all); the message says why."""


@dataclass
class RenderResult:
    pdf: bytes
    seconds: float  # inside the child, layout + writing
    peak_rss_kb: int  # the child's own ru_maxrss


def limits_from_config() -> tuple[float, int]:
    from flask import current_app, has_app_context

    if not has_app_context():
        return DEFAULT_TIMEOUT_SECONDS, DEFAULT_MEMORY_MB
    config = current_app.config
    return (
        float(config.get("RENDER_TIMEOUT_SECONDS") or DEFAULT_TIMEOUT_SECONDS),
        int(config.get("RENDER_MEMORY_MB") or DEFAULT_MEMORY_MB),
    )


def render_pdf_capped(
    html: str,
    csv_bytes: bytes,
    *,
    filename_stem: str,
    timeout: float | None = None,
    memory_mb: int | None = None,
) -> RenderResult:
    """`pdf.render_pdf` in a child process; RenderError on a timeout, lack of memory or a crash.

    The child sets RLIMIT_AS on itself (not via preexec_fn, which is unsafe in the threaded
    embedded worker). `subprocess.run(timeout=...)` kills it with SIGKILL when time is up, so the
    job never hangs.
    """
    default_timeout, default_memory = limits_from_config()
    timeout = timeout if timeout is not None else default_timeout
    memory_mb = memory_mb if memory_mb is not None else default_memory
    with tempfile.TemporaryDirectory(prefix="portal-render-") as tmp:
        workdir = Path(tmp)
        (workdir / "input.html").write_text(html, encoding="utf-8")
        (workdir / "input.csv").write_bytes(csv_bytes)
        params = {"filename_stem": filename_stem, "memory_mb": memory_mb}
        (workdir / "params.json").write_text(json.dumps(params))
        try:
            # -I: isolated, so the child imports neither the app nor anything from the current folder.
            done = subprocess.run(  # noqa: S603 - our own interpreter and script, no user input
                [sys.executable, "-I", str(CHILD), str(workdir)],
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise RenderError(
                f"rendering {filename_stem} took longer than {timeout:g} s (RENDER_TIMEOUT_SECONDS); stopped"
            ) from exc
        stderr = done.stderr.decode("utf-8", "replace").strip()
        if done.returncode == pdfa.EXIT_OUT_OF_MEMORY or "MemoryError" in stderr:
            raise RenderError(
                f"rendering {filename_stem} needed more than {memory_mb} MB (RENDER_MEMORY_MB); stopped"
            )
        if done.returncode < 0:
            name = signal.Signals(-done.returncode).name
            raise RenderError(f"rendering {filename_stem} was killed by {name} (memory cap {memory_mb} MB?)")
        if done.returncode != 0:
            raise RenderError(f"rendering {filename_stem} failed: {stderr[-2000:] or done.returncode}")
        figures = json.loads(done.stdout.decode().strip().splitlines()[-1])
        return RenderResult(
            pdf=(workdir / "output.pdf").read_bytes(),
            seconds=figures["seconds"],
            peak_rss_kb=figures["maxrss_kb"],
        )
