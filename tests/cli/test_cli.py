"""Operator CLI: each command does its work, prints what it did, and explains bad input."""

import json
from pathlib import Path

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import (
    AuditEvent,
    Customer,
    Employee,
    Invoice,
    InvoiceStatus,
    Partner,
    Upload,
    UploadStatus,
    User,
)

DATA = Path(__file__).resolve().parents[1] / "data"


def _count(app, model, *where):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_partners_create_prints_and_stores_partner(app, runner):
    result = runner.invoke(
        args=["partners", "create", "--slug", "mit-x", "--name", "MIT X", "--kind", "nonprofit"]
    )
    assert result.exit_code == 0, result.output
    assert "Created partner mit-x (MIT X, nonprofit, USD)" in result.output
    assert _count(app, Partner, Partner.slug == "mit-x") == 1
    assert _count(app, AuditEvent, AuditEvent.action == "partner.created") == 1


def test_partners_create_when_bad_slug_explains(runner, app):
    result = runner.invoke(args=["partners", "create", "--slug", "Bad Slug!", "--name", "X"])
    assert result.exit_code != 0
    assert "slug: use 1-64 lowercase letters" in result.output


def test_partners_create_when_bad_currency_explains(runner, app):
    result = runner.invoke(args=["partners", "create", "--slug", "x", "--name", "X", "--currency", "XYZ"])
    assert "currency: 'XYZ' is not an ISO 4217 currency code" in result.output


def test_customers_create_prints_and_stores_customer(app, runner):
    result = runner.invoke(
        args=[
            "customers",
            "create",
            "--code",
            "acme",
            "--name",
            "Acme",
            "--timezone",
            "America/Chicago",
            "--invoice-day",
            "28",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "Created customer ACME (Acme, America/Chicago, invoices on day 28)" in result.output
    with app.app_context():
        assert db.session.scalar(select(Customer.invoice_day).where(Customer.code == "ACME")) == 28


def test_customers_create_when_invoice_day_29_explains(runner, app):
    result = runner.invoke(args=["customers", "create", "--code", "A", "--name", "A", "--invoice-day", "29"])
    assert result.exit_code != 0
    assert "invoice_day: must be a day from 1 to 28" in result.output


def test_customers_create_when_unknown_timezone_explains(runner, app):
    result = runner.invoke(
        args=["customers", "create", "--code", "A", "--name", "A", "--timezone", "Mars/Olympus"]
    )
    assert "timezone: 'Mars/Olympus' is not a known time zone" in result.output


def test_customers_create_when_code_taken_explains(runner, app, tenants):
    result = runner.invoke(args=["customers", "create", "--code", "ACME", "--name", "Again"])
    assert "a customer with code 'ACME' already exists" in result.output


def test_create_user_for_partner_prints_generated_password(app, runner, tenants):
    result = runner.invoke(
        args=[
            "create-user",
            "--email",
            "new@state.example",
            "--role",
            "partner",
            "--partner",
            "state-u",
            "--generate-password",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "Created partner user new@state.example (State University)" in result.output
    password = result.output.split("Password: ")[1].strip()
    with app.app_context():
        assert db.session.scalar(select(User).where(User.email == "new@state.example")).check_password(
            password
        )


def test_create_user_when_partner_missing_explains(runner, app):
    result = runner.invoke(
        args=["create-user", "--email", "a@b.example", "--role", "partner", "--password", "x" * 12]
    )
    assert "partner: a partner user needs --partner SLUG" in result.output


def test_create_user_when_password_short_explains(runner, app):
    result = runner.invoke(
        args=["create-user", "--email", "a@b.example", "--role", "admin", "--password", "short"]
    )
    assert "password: must be at least 12 characters" in result.output


def test_employees_import_creates_roster(app, runner, tenants):
    result = runner.invoke(
        args=["employees", "import", "--customer", "GLOBEX", str(DATA / "rosters/acme.csv")]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["created"] == 2 and summary["rejected"] == 0
    assert _count(app, Employee, Employee.customer_id == tenants["customer2"]) == 4


def test_employees_import_when_reimported_updates_never_duplicates(app, runner, tenants):
    runner.invoke(args=["employees", "import", "--customer", "ACME", str(DATA / "rosters/acme.csv")])
    result = runner.invoke(
        args=["employees", "import", "--customer", "ACME", str(DATA / "rosters/acme-update-with-errors.csv")]
    )
    summary = json.loads(result.output)
    assert (summary["created"], summary["updated"], summary["unchanged"]) == (1, 1, 1)
    assert (
        _count(app, Employee, Employee.customer_id == tenants["customer"], Employee.external_id == "A-1") == 1
    )
    with app.app_context():
        assert db.session.scalar(select(Employee.name).where(Employee.external_id == "A-1")) == "Ada King"


def test_employees_import_when_rows_bad_reports_row_and_field(runner, app, tenants):
    result = runner.invoke(
        args=["employees", "import", "--customer", "ACME", str(DATA / "rosters/acme-update-with-errors.csv")]
    )
    assert result.exit_code == 1
    errors = json.loads(result.output)["errors"]
    assert "row 4, email: 'not-an-email' is not a valid address" in errors[0]
    assert "row 5, external_id: is required" in errors
    assert "row 6, name: is required" in errors
    assert "row 8, external_id: 'A-5' already appears on row 7" in errors


def test_employees_import_when_columns_missing_explains(runner, app, tenants, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id_number,full_name\n1,A\n")
    result = runner.invoke(args=["employees", "import", "--customer", "ACME", str(bad)])
    assert result.exit_code != 0
    assert "the roster needs columns external_id, name (found: id_number, full_name)" in result.output


def test_employees_import_when_unknown_customer_explains(runner, app):
    result = runner.invoke(args=["employees", "import", "--customer", "NOPE", str(DATA / "rosters/acme.csv")])
    assert "no customer with code 'NOPE'" in result.output


def test_seed_demo_loads_data_and_prints_logins(app, runner):
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    assert "admin@example.com" in result.output and "customer@example.com" in result.output
    assert _count(app, Partner) == 3 and _count(app, Customer) == 3
    assert _count(app, Employee) == 36
    assert (Path(app.instance_path) / "demo-logins.txt").exists()


def test_seed_demo_printed_login_works(app, runner, client):
    output = runner.invoke(args=["seed-demo"]).output
    line = next(line for line in output.splitlines() if "customer@example.com" in line)
    password = line.split()[-1]
    response = client.post("/login", data={"email": "customer@example.com", "password": password})
    assert response.headers["Location"] == "/customer/"


def test_seed_demo_when_data_exists_if_empty_does_nothing(app, runner, tenants):
    result = runner.invoke(args=["seed-demo", "--if-empty"])
    assert result.exit_code == 0
    assert "Demo data not loaded: the database already has partners or customers" in result.output
    assert _count(app, Partner) == 2


def test_db_is_empty_exit_status(runner, app):
    assert runner.invoke(args=["db-is-empty"]).exit_code == 0
    runner.invoke(args=["partners", "create", "--slug", "x", "--name", "X"])
    assert runner.invoke(args=["db-is-empty"]).exit_code == 1


def test_seed_demo_sends_uploads_so_every_upload_page_has_content(app, runner):
    runner.invoke(args=["seed-demo"])
    with app.app_context():
        statuses = db.session.scalars(select(Upload.status).order_by(Upload.id)).all()
    assert statuses == [UploadStatus.IMPORTED] * 3 + [UploadStatus.NEEDS_REVIEW]


def test_seed_demo_leaves_an_invoice_awaiting_each_customer(app, runner):
    runner.invoke(args=["seed-demo"])
    with app.app_context():
        invoices = db.session.execute(select(Invoice.number, Invoice.status, Invoice.line_count)).all()
    assert {status for _, status, _ in invoices} == {InvoiceStatus.PENDING_APPROVAL}
    assert len(invoices) == 3
    assert max(count for *_, count in invoices) >= 300
