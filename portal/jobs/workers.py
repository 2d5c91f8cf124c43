"""RQ workers for both run modes: a forking worker for production, a thread for embedded mode.

The embedded worker is RQ's SimpleWorker without signal handlers (they only work in the main
thread) and with TimerDeathPenalty (SIGALRM is main-thread only too), run over fakeredis.
"""

from __future__ import annotations

import logging
import threading
import time

from rq import SimpleWorker, Worker
from rq.cron import CronScheduler
from rq.exceptions import StopRequested
from rq.scheduler import RQScheduler
from rq.timeouts import TimerDeathPenalty

from portal import jobs
from portal.core.audit import absorb_views
from portal.extensions import db
from portal.invoicing.build import enqueue_due
from portal.invoicing.notify import send_reminders
from portal.rendering.sandbox import revive_server

log = logging.getLogger(__name__)

CRON_LOCK_KEY = "portal:cron-leader"
CRON_LOCK_TTL = 180


class PortalWorker(Worker):
    """Production worker: each job runs in a forked work horse with a fresh connection pool.

    Every worker also runs the sweeper every `sweep_seconds`, idle or busy (from RQ's maintenance
    loop while it waits for jobs, and from its horse-monitoring loop while a job runs), so a job
    whose worker died is handed back within JOB_HEARTBEAT_TIMEOUT_SECONDS plus one sweep, however
    many workers there are and whichever holds the cron lock. Sweeps are guarded UPDATEs: two
    workers sweeping at once take a dead job back once.
    """

    def __init__(self, *args, sweep_seconds: int = 20, **kwargs):
        sweep_seconds = max(int(sweep_seconds), 1)
        kwargs.setdefault("maintenance_interval", sweep_seconds)
        # RQ waits for a job for worker_ttl - 15 s before looking at its maintenance again.
        kwargs.setdefault("worker_ttl", sweep_seconds + 15)
        kwargs.setdefault("job_monitoring_interval", min(sweep_seconds, 30))
        super().__init__(*args, **kwargs)
        self.sweep_seconds = sweep_seconds
        self._last_sweep = 0.0

    def run_maintenance_tasks(self):
        super().run_maintenance_tasks()
        self.sweep_jobs()

    def maintain_heartbeats(self, job):
        super().maintain_heartbeats(job)
        if time.monotonic() - self._last_sweep >= self.sweep_seconds:
            self.sweep_jobs()

    def sweep_jobs(self) -> None:
        """Run the sweeper here, in the worker (not its horse); never let it stop the worker."""
        self._last_sweep = time.monotonic()
        try:
            report = jobs.sweep_report()
            for line in report.lines():
                log.warning("sweeper: %s", line)
            if report.pushed:
                log.info("sweeper: re-enqueued %d lost job(s)", len(report.pushed))
        except Exception:
            log.exception("sweeper failed; it runs again in %d s", self.sweep_seconds)
        finally:
            db.session.remove()  # hold no connection across the next fork

    def fork_work_horse(self, job, queue):
        # The horse renders PDFs through this process's render server: bring it back if it died.
        revive_server()
        return super().fork_work_horse(job, queue)

    def main_work_horse(self, job, queue):
        # Connections inherited across fork() must not be shared with the parent.
        db.engine.dispose(close=False)
        return super().main_work_horse(job, queue)


class EmbeddedWorker(SimpleWorker):
    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self):
        pass


def register_cron_jobs(cron: CronScheduler, sweep_seconds: int, *, sweep: bool = True) -> None:
    """All periodic work, in one place, for both run modes.

    worker.py passes sweep=False: there every PortalWorker sweeps by itself (see PortalWorker).
    """
    if sweep:
        cron.register(jobs.cron_sweep, queue_name="default", interval=sweep_seconds)
    # Hourly, so that each customer's invoice day is caught soon after it starts in its own time
    # zone; a period is built once however often this runs.
    cron.register(enqueue_due, queue_name="invoices", cron="5 * * * *")
    cron.register(send_reminders, queue_name="default", cron="0 14 * * *")
    # Page views wait beside the audit chain until the next append; this bounds the wait when
    # nothing else is written (see PendingView).
    cron.register(absorb_views, queue_name="default", interval=60)


class LeaderCronScheduler(CronScheduler):
    """RQ's cron scheduler, run by one worker process at a time.

    Every worker.py may start one; a Redis lock elects the leader so that adding workers does not
    multiply periodic jobs. The leader renews the lock on each heartbeat and stops if it lost it.
    """

    def acquire(self) -> bool:
        return bool(self.connection.set(CRON_LOCK_KEY, self.name, nx=True, ex=CRON_LOCK_TTL))

    def heartbeat(self):
        super().heartbeat()
        holder = self.connection.get(CRON_LOCK_KEY)
        if holder is not None and holder.decode() != self.name:
            raise StopRequested()
        self.connection.set(CRON_LOCK_KEY, self.name, ex=CRON_LOCK_TTL)


class EmbeddedCron(CronScheduler):
    def _install_signal_handlers(self):
        pass


def drain(app, queues=jobs.QUEUES) -> bool:
    """Run every queued job now, in this thread, until the queues are empty (tests, `flask jobs drain`).

    A fresh app context gives the jobs their own database session, as in a real worker.
    """
    with app.app_context():
        conn = jobs.get_connection()
        RQScheduler(list(queues), connection=conn).enqueue_scheduled_jobs()
        worker = EmbeddedWorker(list(queues), connection=conn)
        return worker.work(burst=True, logging_level="WARNING")


class EmbeddedRunner:
    """The in-process worker of embedded mode: drain the queues, run due cron jobs, sweep; repeat."""

    def __init__(self, app, poll_seconds: float = 1.0):
        self.app = app
        self.poll_seconds = poll_seconds
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="embedded-worker", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def _loop(self) -> None:
        with self.app.app_context():
            cron = EmbeddedCron(connection=jobs.get_connection(), logging_level="WARNING")
            register_cron_jobs(cron, self.app.config["JOB_SWEEP_SECONDS"])
            try:
                jobs.sweep()
            except Exception:
                log.exception("embedded worker: first sweep failed")
            finally:
                db.session.remove()
        while not self.stop_event.is_set():
            try:
                with self.app.app_context():
                    cron.enqueue_jobs()
                    db.session.remove()
                drain(self.app)
            except Exception:
                log.exception("embedded worker: loop failed; retrying")
                time.sleep(self.poll_seconds)
            self.stop_event.wait(self.poll_seconds)


def start_embedded(app) -> EmbeddedRunner:
    runner = app.extensions.get("embedded_worker")
    if runner is None or not runner.alive:
        runner = EmbeddedRunner(app)
        app.extensions["embedded_worker"] = runner
        runner.start()
    return runner
