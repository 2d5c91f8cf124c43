"""Operator commands: `flask --app portal <command>`; each prints what it did.

Commands call the same domain functions as the pages, so a scripted set-up and a clicked one
leave the same rows and the same audit events behind.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import func, select

from portal import accounts, jobs
from portal.accounts import roster
from portal.extensions import db
from portal.models import Customer, Partner

partners_cli = AppGroup("partners", help="Manage partners.")
customers_cli = AppGroup("customers", help="Manage customers.")
employees_cli = AppGroup("employees", help="Manage customers' employees.")
jobs_cli = AppGroup("jobs", help="Background jobs.")
invoices_cli = AppGroup("invoices", help="Monthly invoices.")
mappings_cli = AppGroup("mappings", help="Partners' mapping profiles (JSON files, see README).")


def _fail(exc: Exception) -> None:
    db.session.rollback()
    raise click.ClickException(str(exc))


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
        _fail(exc)
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
        _fail(exc)
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
            _fail(exc)
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
        _fail(exc)
    click.echo(f"Created {user.role.value} user {user.email} ({user.tenant_label})")
    if generate_password:
        click.echo(f"Password: {password}")


@click.command("seed-demo")
@with_appcontext
@click.option("--if-empty", is_flag=True, help="Do nothing (and say so) if the database has data.")
def seed_demo(if_empty):
    """Load demo partners, customers with employees, and one user per role; print their logins."""
    from portal.accounts.demo import DemoDataExists, load_demo

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


@jobs_cli.command("drain")
def jobs_drain():
    """Run every queued job now in this process (embedded mode, or to catch up by hand)."""
    from portal.jobs.workers import drain

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


@click.command("db-is-empty")
@with_appcontext
def db_is_empty():
    """Exit 0 if the database holds no partners or customers (used by the quick start)."""
    count = db.session.scalar(select(func.count(Partner.id))) + db.session.scalar(
        select(func.count(Customer.id))
    )
    raise SystemExit(0 if count == 0 else 1)


def _partner(slug: str) -> Partner:
    partner = db.session.scalar(select(Partner).where(Partner.slug == slug.strip().lower()))
    if partner is None:
        raise click.ClickException(f"no partner with slug {slug!r}")
    return partner


@click.command("ingest")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--partner", "partner_slug", required=True, help="Partner slug.")
@click.option(
    "--accept-valid", is_flag=True, help="If some rows are rejected or in conflict, import the valid ones."
)
@with_appcontext
def ingest(path, partner_slug, accept_valid):
    """Upload a partner file as the partner would, parse it now, and print a JSON summary.

    Exit status 0 when the file was imported, 1 when it needs a mapping or a review, or failed.
    """
    from portal.ingest.receive import UploadRefused, receive_upload
    from portal.ingest.reports import summary
    from portal.ingest.review import import_valid_rows, remap_upload
    from portal.models import Upload, UploadStatus

    partner = _partner(partner_slug)
    with path.open("rb") as fh:
        try:
            upload = receive_upload(
                partner, fh, path.name, user=None, max_bytes=current_app.config["MAX_CONTENT_LENGTH"]
            )
        except UploadRefused as exc:
            # The same file waiting for a mapping that now exists: parse that upload, not a copy.
            if exc.existing is None or exc.existing.status != UploadStatus.NEEDS_MAPPING:
                _fail(exc)
            upload = exc.existing
            remap_upload(upload, user=None)
    db.session.commit()
    upload_id, job_id = upload.id, upload.job_id
    jobs.run_job(job_id)  # a worker may have taken it first; then wait for it below
    deadline = time.monotonic() + 3600
    while True:
        db.session.expire_all()
        upload = db.session.get(Upload, upload_id)
        if not upload.in_progress or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if upload.status == UploadStatus.NEEDS_REVIEW and accept_valid:
        import_valid_rows(upload, user=None)
        db.session.commit()
    result = summary(upload)
    if upload.status == UploadStatus.NEEDS_MAPPING:
        from portal.ingest.headers import propose_mapping

        result["headers"] = upload.headers
        result["proposed_columns"] = propose_mapping(upload.headers or [])
        result["hint"] = (
            "save a mapping with `flask --app portal mappings import`, then ingest the file again"
        )
    click.echo(json.dumps(result, indent=2))
    raise SystemExit(0 if upload.status == UploadStatus.IMPORTED else 1)


@mappings_cli.command("export")
@click.option("--partner", "partner_slug", required=True)
@click.option("--name", default="default", show_default=True, help="Profile name.")
@click.argument("file", type=click.File("w"))
def mappings_export(partner_slug, name, file):
    """Write the partner's current profile NAME as JSON to FILE (- for standard output)."""
    from portal.ingest.profiles import latest_profiles

    partner = _partner(partner_slug)
    version = next((v for v in latest_profiles(partner.id) if v.name == name), None)
    if version is None:
        raise click.ClickException(f"partner {partner.slug} has no mapping profile named {name!r}")
    json.dump(version.profile, file, indent=2)
    file.write("\n")
    click.echo(f"Exported {partner.slug} profile {name!r} version {version.version}", err=True)


@mappings_cli.command("import")
@click.option("--partner", "partner_slug", required=True)
@click.option("--name", default="default", show_default=True, help="Profile name.")
@click.argument("file", type=click.File("r"))
def mappings_import(partner_slug, name, file):
    """Save FILE (JSON) as a new version of the partner's profile NAME."""
    from portal.ingest.mapping import MappingError
    from portal.ingest.profiles import save_mapping

    partner = _partner(partner_slug)
    try:
        data = json.load(file)
        version = save_mapping(partner, data, name=name)
        db.session.commit()
    except json.JSONDecodeError as exc:
        _fail(ValueError(f"{file.name} is not valid JSON: {exc}"))
    except MappingError as exc:
        _fail(ValueError("the mapping profile is not valid:\n  - " + "\n  - ".join(exc.problems)))
    click.echo(f"Saved {partner.slug} profile {name!r} version {version.version}")


@invoices_cli.command("run-due")
@click.option(
    "--date", "on_date", type=click.DateTime(formats=["%Y-%m-%d"]), help="Pretend today is this date."
)
def invoices_run_due(on_date):
    """Build the previous month's invoices of every customer whose invoice day has come; print them."""
    from portal.invoicing.build import due_customers, run_period

    due = due_customers(today=on_date.date() if on_date else None)
    results = [run_period(customer.id, period.key) for customer, period in due]
    click.echo(json.dumps({"due": len(due), "runs": results}, indent=2))


@invoices_cli.command("build")
@click.option("--customer", "customer_code", required=True, help="Customer code.")
@click.option("--period", "period_key", required=True, help="Billing period, YYYY-MM.")
def invoices_build(customer_code, period_key):
    """Build a customer's invoices for one period now (creates only what is missing); print them."""
    from portal.invoicing.build import run_period
    from portal.invoicing.periods import Period

    customer = db.session.scalar(select(Customer).where(Customer.code == customer_code.strip().upper()))
    if customer is None:
        raise click.ClickException(f"no customer with code {customer_code!r}")
    try:
        period = Period.parse(period_key)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(run_period(customer.id, period.key, force=True), indent=2))


def init_app(app: Flask) -> None:
    for command in (
        partners_cli,
        customers_cli,
        employees_cli,
        jobs_cli,
        invoices_cli,
        mappings_cli,
        create_user,
        seed_demo,
        db_is_empty,
        ingest,
    ):
        app.cli.add_command(command)
