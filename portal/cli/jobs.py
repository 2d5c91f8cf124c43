"""`flask jobs drain` and `flask jobs sweep`: run queued jobs in this process; recover lost ones."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from portal import jobs
from portal.jobs.workers import drain

jobs_cli = AppGroup("jobs", help="Background jobs.")


@jobs_cli.command("drain")
def jobs_drain():
    """Run every queued job now in this process (embedded mode, or to catch up by hand)."""
    swept = jobs.sweep()
    worked = drain(current_app._get_current_object())
    click.echo(f"Re-enqueued {swept} lost job(s); {'ran' if worked else 'no'} queued jobs.")


@jobs_cli.command("sweep")
def jobs_sweep():
    """Hand to the queue every recorded job that never ran, and take back the jobs of dead workers."""
    report = jobs.sweep_report()
    for line in report.lines():
        click.echo(line)
    click.echo(f"Re-enqueued {len(report.pushed)} lost job(s).")
