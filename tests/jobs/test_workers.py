"""Both run modes' workers run the same job code: the embedded thread, and worker.py over Redis."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from portal import jobs
from portal.extensions import db
from portal.jobs.workers import EmbeddedRunner
from portal.models import JobRecord, JobStatus
from tests.jobs.sample_jobs import note

ROOT = Path(__file__).resolve().parents[2]


def _status(app, job_id):
    with app.app_context():
        return db.session.get(JobRecord, job_id).status


def test_embedded_runner_thread_runs_committed_job(app):
    runner = EmbeddedRunner(app, poll_seconds=0.05)
    runner.start()
    try:
        with app.app_context():
            job_id = jobs.enqueue(note, "in a thread").id
            db.session.commit()
        deadline = time.monotonic() + 20
        while _status(app, job_id) != JobStatus.DONE and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        runner.stop()
    assert _status(app, job_id) == JobStatus.DONE
    assert not runner.alive


# worker.py is the production worker: it needs a Redis another process can see, so this test runs
# on the PostgreSQL + Redis backend only (SQLite mode's fakeredis lives inside the test process).
@pytest.mark.parametrize("backend", ["postgresql"])
def test_worker_py_runs_jobs_in_production_mode(app, backend, tmp_path):
    """`python worker.py --burst` (a real forking RQ worker) runs the recorded job."""
    with app.app_context():
        job_id = jobs.enqueue(jobs.cron_sweep).id
        db.session.commit()
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        "STORAGE_URL": app.config["STORAGE_URL"],
        "SECRET_KEY": "test",
        "PORTAL_INSTANCE_PATH": str(tmp_path),
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "worker.py"), "--burst"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert _status(app, job_id) == JobStatus.DONE
