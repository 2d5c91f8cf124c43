"""Operator commands: `flask --app portal <command>`; each prints what it did.

Commands call the same domain functions as the pages, so a scripted set-up and a clicked one
leave the same rows and the same audit events behind.
"""

from __future__ import annotations

from flask import Flask

from portal.cli import accounts, audit, ingest, invoices, jobs, sqs


def init_app(app: Flask) -> None:
    """Register every command group: accounts, ingest and mappings, invoices, jobs, audit, sqs."""
    for command in (
        accounts.partners_cli,
        accounts.customers_cli,
        accounts.employees_cli,
        accounts.create_user,
        accounts.seed_demo,
        accounts.db_is_empty,
        ingest.ingest,
        ingest.mappings_cli,
        invoices.invoices_cli,
        jobs.jobs_cli,
        audit.audit_cli,
        sqs.sqs_cli,
    ):
        app.cli.add_command(command)
