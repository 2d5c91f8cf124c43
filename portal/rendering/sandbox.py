"""Runs the PDF render in another process with a time cap and a memory cap (RLIMIT_AS).

A huge or hostile invoice can then only fail its own render with RenderError: it cannot exhaust the
worker's memory or hold its job forever. Input and output pass through files in a temporary folder.

Two ways, same caps, same bytes (`pdfa.py` has the other side of both):
- the render server (RENDER_SERVER=true, the default): a process that imported WeasyPrint once
  forks a child per render. worker.py starts it when it starts, so its forked jobs all use it; in
  embedded mode the web process starts it at the first render. If it is gone, the next render
  starts a new one, and if that fails too, the render runs one-shot.
- one-shot: `python -I pdfa.py <workdir>` per render, which pays the interpreter and WeasyPrint
  start-up (about 0.4 s) every time.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from flask import current_app, has_app_context

from portal.rendering import pdfa

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 300
DEFAULT_MEMORY_MB = 1536
SERVER_START_SECONDS = 60
CHILD = Path(pdfa.__file__)


class RenderError(RuntimeError):
    """The PDF could not be rendered within its caps (or at all); the message says why."""


class ServerUnavailable(RuntimeError):
    """The render server could not be reached or started (the render then runs one-shot)."""


@dataclass
class RenderResult:
    pdf: bytes
    seconds: float  # inside the rendering process, layout + writing
    peak_rss_kb: int  # that process's own ru_maxrss


@dataclass(frozen=True)
class Limits:
    timeout: float
    memory_mb: int
    use_server: bool


def limits_from_config() -> Limits:
    if not has_app_context():
        return Limits(DEFAULT_TIMEOUT_SECONDS, DEFAULT_MEMORY_MB, True)
    config = current_app.config
    return Limits(
        float(config.get("RENDER_TIMEOUT_SECONDS") or DEFAULT_TIMEOUT_SECONDS),
        int(config.get("RENDER_MEMORY_MB") or DEFAULT_MEMORY_MB),
        bool(config.get("RENDER_SERVER", True)),
    )


def render_pdf_capped(
    html: str,
    csv_bytes: bytes,
    *,
    filename_stem: str,
    timeout: float | None = None,
    memory_mb: int | None = None,
    use_server: bool | None = None,
) -> RenderResult:
    """`pdf.render_pdf` in another process; RenderError on a timeout, lack of memory or a crash.

    The rendering process sets RLIMIT_AS on itself (not via preexec_fn, which is unsafe in the
    threaded embedded worker) and is killed with SIGKILL when the time is up, so the job never hangs.
    """
    limits = limits_from_config()
    timeout = timeout if timeout is not None else limits.timeout
    memory_mb = memory_mb if memory_mb is not None else limits.memory_mb
    use_server = use_server if use_server is not None else limits.use_server
    with tempfile.TemporaryDirectory(prefix="portal-render-") as tmp:
        workdir = Path(tmp)
        (workdir / "input.html").write_text(html, encoding="utf-8")
        (workdir / "input.csv").write_bytes(csv_bytes)
        figures, way = None, "one-shot"
        if use_server:
            try:
                figures = _render_on_server(workdir, filename_stem, timeout, memory_mb)
                way = "through the render server"
            except ServerUnavailable as exc:
                log.warning("render server unavailable (%s); rendering %s one-shot", exc, filename_stem)
        if figures is None:
            figures = _render_one_shot(workdir, filename_stem, timeout, memory_mb)
        log.info("rendered %s %s in %.2f s", filename_stem, way, figures["seconds"])
        return RenderResult(
            pdf=(workdir / "output.pdf").read_bytes(),
            seconds=figures["seconds"],
            peak_rss_kb=figures["maxrss_kb"],
        )


def _took_too_long(filename_stem: str, timeout: float) -> RenderError:
    return RenderError(
        f"rendering {filename_stem} took longer than {timeout:g} s (RENDER_TIMEOUT_SECONDS); stopped"
    )


def _failed(filename_stem: str, code: int, error: str, memory_mb: int) -> RenderError:
    if code == pdfa.EXIT_OUT_OF_MEMORY or "MemoryError" in error:
        return RenderError(
            f"rendering {filename_stem} needed more than {memory_mb} MB (RENDER_MEMORY_MB); stopped"
        )
    return RenderError(f"rendering {filename_stem} failed: {error[-2000:] or code}")


def _render_one_shot(workdir: Path, filename_stem: str, timeout: float, memory_mb: int) -> dict:
    """A fresh `python -I pdfa.py <workdir>`; returns its figures."""
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
        raise _took_too_long(filename_stem, timeout) from exc
    stderr = done.stderr.decode("utf-8", "replace").strip()
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        raise RenderError(f"rendering {filename_stem} was killed by {name} (memory cap {memory_mb} MB?)")
    if done.returncode != 0:
        raise _failed(filename_stem, done.returncode, stderr, memory_mb)
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


class RenderServer:
    """A running `pdfa.py --serve`: its socket, and its process where this process started it."""

    def __init__(self, socket_path: str, process: subprocess.Popen):
        self.socket_path = socket_path
        self.process = process
        self.owner_pid = os.getpid()

    @classmethod
    def start(cls, wait_seconds: float | None = None) -> RenderServer:
        """Start a server (a child of this process) and wait until it listens."""
        directory = tempfile.mkdtemp(prefix="portal-render-server-")  # 0700: only we can connect
        socket_path = os.path.join(directory, "socket")
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and script, no user input
            [sys.executable, "-I", str(CHILD), "--serve", socket_path, str(os.getpid())],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
        )
        wait = SERVER_START_SECONDS if wait_seconds is None else wait_seconds
        ready, _, _ = select.select([process.stdout], [], [], wait)
        line = process.stdout.readline().decode().strip() if ready else ""
        process.stdout.close()
        if line != pdfa.READY:
            process.kill()
            process.wait()
            shutil.rmtree(directory, ignore_errors=True)
            raise ServerUnavailable(f"the render server did not start (exit {process.returncode})")
        log.info("render server %d listening on %s", process.pid, socket_path)
        return cls(socket_path, process)

    def running(self) -> bool:
        """Whether it still runs. A forked child (a worker's job) cannot wait on its parent's
        child, so there the socket file, removed when the server stops, has to tell."""
        if self.owner_pid == os.getpid():
            return self.process.poll() is None
        return os.path.exists(self.socket_path)

    def stop(self) -> None:
        """Stop it, if this process started it (a forked job leaves its parent's server alone)."""
        if self.owner_pid != os.getpid():
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(os.path.dirname(self.socket_path), ignore_errors=True)


_lock = threading.Lock()
_server: RenderServer | None = None


def start_server() -> RenderServer:
    """The running render server, started if there is none (worker.py calls this at its start)."""
    global _server
    with _lock:
        if _server is None or not _server.running():
            if _server is not None:
                log.warning("render server %d is gone; starting another", _server.process.pid)
                _server.stop()
            _server = RenderServer.start()
            atexit.register(_server.stop)
        return _server


def revive_server() -> None:
    """Restart this process's render server if it has died (worker.py, before forking each job).

    Does nothing where no server was started here, so it is cheap to call; a failed restart is
    logged, and the job's render then starts a server of its own or renders one-shot.
    """
    server = _server
    if server is None or server.owner_pid != os.getpid() or server.running():
        return
    try:
        start_server()
    except ServerUnavailable as exc:
        log.warning("render server could not be restarted: %s", exc)


def stop_server() -> None:
    global _server
    with _lock:
        if _server is not None:
            _server.stop()
            _server = None


def _discard(server: RenderServer) -> None:
    """Forget a server that does not answer (stopping it, if it is ours), so the next one starts."""
    global _server
    with _lock:
        if _server is server:
            _server = None
    server.stop()


def _render_on_server(workdir: Path, filename_stem: str, timeout: float, memory_mb: int) -> dict:
    """Render through the server; ServerUnavailable if it cannot be reached even after a restart."""
    request = {
        "workdir": str(workdir),
        "filename_stem": filename_stem,
        "memory_mb": memory_mb,
        "timeout": timeout,
    }
    deadline = time.monotonic() + timeout
    for attempt in (1, 2):
        server = start_server()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(10)
            try:
                sock.connect(server.socket_path)
            except OSError as exc:  # refused or no socket file: it stopped since we looked
                if attempt == 2:
                    raise ServerUnavailable(f"cannot connect: {exc}") from exc
                _discard(server)
                continue
            sock.sendall(json.dumps(request).encode() + b"\n")
            return _await_answer(sock, deadline, filename_stem, timeout, memory_mb)
        finally:
            sock.close()
    raise AssertionError("unreachable")


def _await_answer(sock, deadline: float, filename_stem: str, timeout: float, memory_mb: int) -> dict:
    answers = sock.makefile("rb")
    pid = None
    try:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        first = answers.readline()
        if not first:
            raise ServerUnavailable("the render server closed the connection")
        pid = json.loads(first)["pid"]
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        last = answers.readline()
    except TimeoutError as exc:
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):  # it ended just now
                os.kill(pid, signal.SIGKILL)
        raise _took_too_long(filename_stem, timeout) from exc
    if not last:  # the child died without a word: killed by the kernel, or crashed in C code
        raise RenderError(f"rendering {filename_stem} stopped without an answer (memory cap {memory_mb} MB?)")
    answer = json.loads(last)
    if not answer["ok"]:
        raise _failed(filename_stem, answer["exit"], answer.get("error", ""), memory_mb)
    return answer
