"""Account commands: partners, customers, employee rosters, login accounts, demo data, and the
quick start's empty-database check. Each calls the same `portal.accounts` function as the admin pages."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import func, select

from portal import accounts
from portal.accounts import roster
from portal.accounts.demo import DemoDataExists, load_demo
from portal.cli.common import fail
from portal.extensions import db
from portal.models import Customer, Partner

partners_cli = AppGroup("partners", help="Manage partners.")
customers_cli = AppGroup("customers", help="Manage customers.")
employees_cli = AppGroup("employees", help="Manage customers' employees.")


@partners_cli.command("create")
@click.option("--slug", required=True, help="Short id used in URLs and the CLI, e.g. state-university.")
@click.option("--name", required=True)
@click.option("--kind", default="university", show_default=True, help="university, business or nonprofit.")
@click.option("--currency", default="USD", show_default=True, help="Default ISO 4217 currency.")
def partners_create(slug, name, kind, currency):
    """Create a partner."""
    try:
        partner = accounts.create_partner(slug=slug, name=name, kind=kind, currency=currency)
        db.session.commit()
    except accounts.ValidationError as exc:
        fail(exc)
    click.echo(
        f"Created partner {partner.slug} ({partner.name}, {partner.kind.value}, {partner.default_currency})"
    )


@customers_cli.command("create")
@click.option("--code", required=True, help="Short customer code, e.g. ACME (used in invoice numbers).")
@click.option("--name", required=True)
@click.option("--kind", default="corporation", show_default=True, help="corporation, private or nonprofit.")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone of the customer.")
@click.option("--invoice-day", default=1, show_default=True, type=int, help="Day of month (1-28) to invoice.")
def customers_create(code, name, kind, timezone, invoice_day):
    """Create a customer."""
    try:
        customer = accounts.create_customer(
            code=code, name=name, kind=kind, timezone=timezone, invoice_day=invoice_day
        )
        db.session.commit()
    except accounts.ValidationError as exc:
        fail(exc)
    click.echo(
        f"Created customer {customer.code} ({customer.name}, {customer.timezone}, "
        f"invoices on day {customer.invoice_day})"
    )


@employees_cli.command("import")
@click.option("--customer", "customer_code", required=True, help="Customer code.")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def employees_import(customer_code, csv_file):
    """Import or update a customer's employee roster from CSV (external_id, name, email)."""
    customer = db.session.scalar(select(Customer).where(Customer.code == customer_code.strip().upper()))
    if customer is None:
        raise click.ClickException(f"no customer with code {customer_code!r}")
    with csv_file.open("rb") as fh:
        try:
            result = roster.import_roster(customer, fh, source=csv_file.name)
        except roster.RosterFileError as exc:
            fail(exc)
    db.session.commit()
    click.echo(json.dumps({"customer": customer.code, **result.as_dict()}, indent=2))
    if result.errors:
        raise SystemExit(1)


@click.command("create-user")
@with_appcontext
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(["admin", "partner", "customer"]))
@click.option("--name", default="")
@click.option("--partner", "partner_slug", help="Partner slug (partner users).")
@click.option("--customer", "customer_code", help="Customer code (customer contacts).")
@click.option("--password", help="Leave out to be prompted (or to generate one with --generate-password).")
@click.option("--generate-password", is_flag=True, help="Generate a random password and print it.")
def create_user(email, role, name, partner_slug, customer_code, password, generate_password):
    """Create a login account."""
    if generate_password:
        password = secrets.token_urlsafe(12)
    elif not password:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = accounts.create_user(
            email=email,
            password=password,
            role=role,
            name=name,
            partner_slug=partner_slug,
            customer_code=customer_code,
        )
        db.session.commit()
    except accounts.ValidationError as exc:
        fail(exc)
    click.echo(f"Created {user.role.value} user {user.email} ({user.tenant_label})")
    if generate_password:
        click.echo(f"Password: {password}")


@click.command("seed-demo")
@with_appcontext
@click.option("--if-empty", is_flag=True, help="Do nothing (and say so) if the database has data.")
def seed_demo(if_empty):
    """Load demo partners, customers with employees, and one user per role; print their logins."""
    try:
        logins = load_demo()
    except DemoDataExists as exc:
        if if_empty:
            click.echo(f"Demo data not loaded: {exc}")
            return
        raise click.ClickException(str(exc)) from exc
    path = Path(current_app.instance_path) / "demo-logins.txt"
    lines = [f"{role:<9} {email:<28} {password}" for role, email, password in logins]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    click.echo("Demo data loaded. Logins (also in instance/demo-logins.txt):")
    for line in lines:
        click.echo(f"  {line}")


@click.command("db-is-empty")
@with_appcontext
def db_is_empty():
    """Exit 0 if the database holds no partners or customers (used by the quick start)."""
    count = db.session.scalar(select(func.count(Partner.id))) + db.session.scalar(
        select(func.count(Customer.id))
    )
    raise SystemExit(0 if count == 0 else 1)
