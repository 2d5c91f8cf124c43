"""A real moto server process (S3, SQS ... in server mode) for the tests that talk to AWS APIs.

Started as its own process on a free port, so the code under test goes through botocore's HTTP
stack exactly as against AWS; the `moto_endpoint` fixture in tests/conftest.py wraps it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.backends import free_port


@contextmanager
def moto_server() -> Iterator[str]:
    """Start `moto_server` on 127.0.0.1 and yield its URL once it accepts connections."""
    server = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    port = free_port()
    proc = subprocess.Popen(
        [server, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(150):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"moto_server exited with status {proc.returncode}") from None
                time.sleep(0.1)
        else:
            raise RuntimeError("moto_server did not start listening within 15 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
