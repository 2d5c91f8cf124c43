"""Production background worker: `python worker.py [--burst] [QUEUE ...]` (default: every queue).

Runs an RQ worker inside an app context that sweeps lost jobs (and takes back the jobs of dead
workers) at start and every JOB_SWEEP_SECONDS, and runs RQ's cron scheduler
in a child process when this worker wins the cron lock (one cron leader however many workers).
"""

from __future__ import annotations

import logging
import multiprocessing
import sys
import time

from portal import create_app, jobs
from portal.jobs.workers import CRON_LOCK_TTL, LeaderCronScheduler, PortalWorker, register_cron_jobs
from portal.rendering import sandbox


def run_cron() -> None:
    """Wait to become the cron leader, then run RQ's cron scheduler until stopped."""
    app = create_app()
    with app.app_context():
        cron = LeaderCronScheduler(connection=jobs.get_connection())
        register_cron_jobs(cron, app.config["JOB_SWEEP_SECONDS"], sweep=False)
        while not cron.acquire():
            time.sleep(CRON_LOCK_TTL / 3)
        cron.start()


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    burst = "--burst" in argv  # run what is queued, then exit (operators catching up; tests)
    queues = [a for a in argv if not a.startswith("--")] or list(jobs.QUEUES)
    unknown = set(queues) - set(jobs.QUEUES)
    if unknown:
        sys.exit(f"unknown queue(s): {', '.join(sorted(unknown))}; queues are {', '.join(jobs.QUEUES)}")
    app = create_app()
    if not app.config["REDIS_URL"]:
        sys.exit(
            "worker.py is for production mode: set REDIS_URL (embedded mode runs jobs in the web process)"
        )
    if not burst:
        cron = multiprocessing.get_context("spawn").Process(target=run_cron, name="rq-cron", daemon=True)
        cron.start()
    if app.config["RENDER_SERVER"]:
        # Before the first fork: every job's work horse then renders PDFs through this one server.
        try:
            sandbox.start_server()
        except sandbox.ServerUnavailable as exc:  # jobs still render, one-shot
            logging.warning("render server not started: %s", exc)
    with app.app_context():
        # The worker sweeps at start (its first maintenance run) and every JOB_SWEEP_SECONDS.
        worker = PortalWorker(
            queues, connection=jobs.get_connection(), sweep_seconds=app.config["JOB_SWEEP_SECONDS"]
        )
        worker.work(burst=burst, with_scheduler=not burst)


if __name__ == "__main__":
    main(sys.argv[1:])
