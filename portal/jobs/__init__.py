"""Durable background jobs: record in the database, hand to RQ after commit, sweep what was lost.

The package's public face, used as `from portal import jobs; jobs.enqueue(...)`:
- queue.py: the connection and queues, `enqueue` (pushed to RQ after the caller commits), `retry`,
  job progress;
- runner.py: `run_job`, what RQ runs: claim the record, beat a heartbeat, record the outcome;
- sweeper.py: take back the jobs of dead workers and push again what RQ lost;
- workers.py: the RQ workers (production and embedded) and the cron jobs.
"""

from portal.jobs.queue import (
    QUEUES,
    RETRY_INTERVALS,
    enqueue,
    enqueue_many,
    get_connection,
    get_progress,
    get_queue,
    init_app,
    push_to_rq,
    retry,
    set_progress,
)
from portal.jobs.runner import run_job
from portal.jobs.sweeper import SweepReport, cron_sweep, sweep, sweep_report

__all__ = [
    "QUEUES",
    "RETRY_INTERVALS",
    "SweepReport",
    "cron_sweep",
    "enqueue",
    "enqueue_many",
    "get_connection",
    "get_progress",
    "get_queue",
    "init_app",
    "push_to_rq",
    "retry",
    "run_job",
    "set_progress",
    "sweep",
    "sweep_report",
]
