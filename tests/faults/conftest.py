"""Real processes for the fault tests: worker.py (or one that stops mid-job) over the test's
PostgreSQL and Redis, with short sweep and heartbeat intervals, and helpers to kill and wait."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import wait_for

ROOT = Path(__file__).resolve().parents[2]
SWEEP_SECONDS = 2
HEARTBEAT_TIMEOUT_SECONDS = 6


def _descendants(pid: int) -> list[int]:
    """The pids of every process below `pid` (read from /proc: children of children too)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


class Workers:
    """Starts worker processes, each in its own process group, and stops them all at the end."""

    def __init__(self, app, tmp_path: Path):
        self.app = app
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen] = []
        self.reached = tmp_path / "fault-reached"
        self.release = tmp_path / "fault-release"

    def env(self, **extra) -> dict:
        return {
            **os.environ,
            "DATABASE_URL": self.app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": self.app.config["REDIS_URL"],
            "STORAGE_URL": self.app.config["STORAGE_URL"],
            "SECRET_KEY": "test",
            "PORTAL_INSTANCE_PATH": str(self.tmp_path),
            "PYTHONPATH": str(ROOT),
            "JOB_SWEEP_SECONDS": str(SWEEP_SECONDS),
            "JOB_HEARTBEAT_TIMEOUT_SECONDS": str(HEARTBEAT_TIMEOUT_SECONDS),
            "RENDER_THEN_DELIVER": "false",
            **extra,
        }

    def start(self, *, hang: str | None = None, name: str = "worker") -> subprocess.Popen:
        """worker.py; with `hang` ("module:function"), one that stops after that function."""
        script = ROOT / "worker.py"
        extra = {}
        if hang:
            script = ROOT / "tests" / "faults" / "hanging_worker.py"
            extra = {
                "FAULT_HANG": hang,
                "FAULT_REACHED": str(self.reached),
                "FAULT_RELEASE": str(self.release),
            }
        log = (self.tmp_path / f"{name}-{len(self.procs)}.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, str(script)],
            env=self.env(**extra),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the test can kill worker and children
        )
        self.procs.append(proc)
        return proc

    def wait_reached(self, timeout: float = 30) -> int:
        """Wait until a hanging worker's job stopped mid-way; return the work horse's pid."""
        wait_for(self.reached.exists, timeout, "the job to reach the fault point")
        return int(self.reached.read_text())

    def kill(self, proc: subprocess.Popen, horse_pid: int | None = None) -> None:
        """SIGKILL the worker's process group and its work horse (RQ puts the horse in its own)."""
        for kill in (lambda: os.killpg(proc.pid, signal.SIGKILL), lambda: os.kill(horse_pid, signal.SIGKILL)):
            with contextlib.suppress(ProcessLookupError, TypeError):
                kill()
        proc.wait(10)

    def log(self) -> str:
        return "\n".join(p.read_text()[-3000:] for p in sorted(self.tmp_path.glob("worker*.log")))

    def stop_all(self) -> None:
        # SIGKILL: nothing of a test's worker is worth a warm shutdown (the next test flushes Redis).
        # RQ forks each job's work horse into a process group of its own, so killing a worker's group
        # leaves a running horse behind; it would go on writing to the next test's database.
        for proc in self.procs:
            if proc.poll() is None:
                horses = _descendants(proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                for pid in horses:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                proc.wait(10)
        if self.reached.exists():
            # A horse left hanging (its worker killed without it) must not outlive the test.
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(self.reached.read_text()), signal.SIGKILL)


@pytest.fixture
def workers(app, tmp_path):
    pool = Workers(app, tmp_path)
    yield pool
    pool.stop_all()
