"""`flask invoices run-due` and `flask invoices build`: build invoices now, as the hourly cron does."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup
from sqlalchemy import select

from portal.extensions import db
from portal.invoicing.build import build_in_chunks, due_customers, run_period
from portal.invoicing.periods import Period
from portal.models import Customer

invoices_cli = AppGroup("invoices", help="Monthly invoices.")


@invoices_cli.command("run-due")
@click.option(
    "--date", "on_date", type=click.DateTime(formats=["%Y-%m-%d"]), help="Pretend today is this date."
)
def invoices_run_due(on_date):
    """Build the previous month's invoices of every customer whose invoice day has come; print them."""
    due = due_customers(today=on_date.date() if on_date else None)
    by_period: dict[str, list[int]] = {}
    for customer, period in due:
        by_period.setdefault(period.key, []).append(customer.id)
    results = [
        result
        for period_key, customer_ids in sorted(by_period.items())
        for result in build_in_chunks(customer_ids, period_key)
    ]
    click.echo(json.dumps({"due": len(due), "runs": results}, indent=2))


@invoices_cli.command("build")
@click.option("--customer", "customer_code", required=True, help="Customer code.")
@click.option("--period", "period_key", required=True, help="Billing period, YYYY-MM.")
def invoices_build(customer_code, period_key):
    """Build a customer's invoices for one period now (creates only what is missing); print them."""
    customer = db.session.scalar(select(Customer).where(Customer.code == customer_code.strip().upper()))
    if customer is None:
        raise click.ClickException(f"no customer with code {customer_code!r}")
    try:
        period = Period.parse(period_key)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(run_period(customer.id, period.key, force=True), indent=2))
