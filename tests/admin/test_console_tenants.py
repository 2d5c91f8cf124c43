"""Partners, customers and employees in the admin console: validation, audit before/after, roster import."""

import io

from sqlalchemy import select

from portal.extensions import db
from portal.models import Customer, Employee, Partner
from tests.factories import events


def test_partner_create_when_bad_slug_error_next_to_field(app, admin_client):
    response = admin_client.post(
        "/admin/partners", data={"slug": "Bad Slug!", "name": "X", "kind": "university", "currency": "USD"}
    )
    assert response.status_code == 400
    assert b'id="slug-error"' in response.data and b"lowercase letters" in response.data
    with app.app_context():
        assert db.session.scalar(select(Partner).where(Partner.name == "X")) is None


def test_partner_create_when_valid_listed_and_audited(app, admin_client):
    response = admin_client.post(
        "/admin/partners",
        data={"slug": "code-camp", "name": "Code Camp", "kind": "business", "currency": "eur"},
        follow_redirects=True,
    )
    assert response.status_code == 200 and b"Code Camp" in response.data
    assert events(app, "partner.created")[-1].details["slug"] == "code-camp"


def test_partner_edit_when_currency_changed_audits_only_that_field(app, admin_client, tenants):
    response = admin_client.post(
        f"/admin/partners/{tenants['partner']}/edit",
        data={"name": "State University", "kind": "university", "currency": "EUR"},
    )
    assert response.status_code == 302
    [event] = events(app, "partner.updated")
    assert event.details == {"before": {"default_currency": "USD"}, "after": {"default_currency": "EUR"}}


def test_partner_edit_when_unknown_currency_error_next_to_field(admin_client, tenants):
    response = admin_client.post(
        f"/admin/partners/{tenants['partner']}/edit",
        data={"name": "State University", "kind": "university", "currency": "XXY"},
    )
    assert response.status_code == 400
    assert b'id="currency-error"' in response.data


def test_customer_edit_when_two_fields_change_audits_only_those(app, admin_client, tenants):
    response = admin_client.post(
        f"/admin/customers/{tenants['customer']}/edit",
        data={
            "name": "Acme Corp",
            "kind": "corporation",
            "timezone": "Europe/Paris",
            "invoice_day": "5",
            "invoicing_enabled": "y",
        },  # fmt: skip
    )
    assert response.status_code == 302
    [event] = events(app, "customer.updated")
    assert event.details == {
        "before": {"timezone": "America/New_York", "invoice_day": 1},
        "after": {"timezone": "Europe/Paris", "invoice_day": 5},
    }
    assert event.customer_id == tenants["customer"]


def test_customer_edit_when_invoicing_unticked_disables_invoicing(app, admin_client, tenants):
    admin_client.post(
        f"/admin/customers/{tenants['customer']}/edit",
        data={"name": "Acme Corp", "kind": "corporation", "timezone": "America/New_York", "invoice_day": "1"},
    )
    with app.app_context():
        assert db.session.get(Customer, tenants["customer"]).invoicing_enabled is False
    assert events(app, "customer.updated")[0].details == {
        "before": {"invoicing_enabled": True},
        "after": {"invoicing_enabled": False},
    }


def test_customer_edit_when_day_29_and_bad_timezone_errors_next_to_fields(app, admin_client, tenants):
    response = admin_client.post(
        f"/admin/customers/{tenants['customer']}/edit",
        data={"name": "Acme Corp", "kind": "corporation", "timezone": "Mars/Base", "invoice_day": "29"},
    )
    assert response.status_code == 400
    assert b'id="invoice_day-error"' in response.data
    assert events(app, "customer.updated") == []


def test_customer_new_when_code_taken_error_next_to_code(admin_client, tenants):
    response = admin_client.post(
        "/admin/customers/new",
        data={"code": "ACME", "name": "Again", "kind": "corporation", "timezone": "UTC", "invoice_day": "1"},
    )
    assert response.status_code == 400
    assert b'id="code-error"' in response.data and b"already exists" in response.data


def test_customer_new_when_valid_created(app, admin_client):
    response = admin_client.post(
        "/admin/customers/new",
        data={"code": "INITECH", "name": "Initech", "kind": "private", "timezone": "UTC", "invoice_day": "3"},
    )
    assert response.status_code == 302
    with app.app_context():
        customer = db.session.scalar(select(Customer).where(Customer.code == "INITECH"))
        assert (customer.invoice_day, customer.invoicing_enabled) == (3, False)


def test_employee_add_then_edit_audits_before_after(app, admin_client, tenants):
    base = f"/admin/customers/{tenants['customer']}/employees"
    assert admin_client.post(f"{base}/new", data={"external_id": "E9", "name": "Nine"}).status_code == 302
    with app.app_context():
        employee = db.session.scalar(select(Employee).where(Employee.external_id == "E9"))
    response = admin_client.post(
        f"{base}/{employee.id}/edit", data={"external_id": "E9", "name": "Nine", "email": "nine@acme.example"}
    )
    assert response.status_code == 302
    assert events(app, "employee.created")[-1].details["after"]["name"] == "Nine"
    assert events(app, "employee.updated")[-1].details == {
        "before": {"email": None},
        "after": {"email": "nine@acme.example"},
    }


def test_employee_add_when_id_taken_error_next_to_field(admin_client, tenants):
    response = admin_client.post(
        f"/admin/customers/{tenants['customer']}/employees/new", data={"external_id": "E1", "name": "Dup"}
    )
    assert response.status_code == 400
    assert b'id="external_id-error"' in response.data


def test_employee_edit_when_other_customers_employee_404(app, admin_client, tenants):
    with app.app_context():
        other = db.session.scalar(select(Employee.id).where(Employee.customer_id == tenants["customer2"]))
    response = admin_client.get(f"/admin/customers/{tenants['customer']}/employees/{other}/edit")
    assert response.status_code == 404


def test_employees_list_when_searched_shows_only_matches(admin_client, tenants):
    response = admin_client.get(f"/admin/customers/{tenants['customer']}/employees?q=person 2")
    assert response.status_code == 200
    assert b"Person 2" in response.data and b"Person 1" not in response.data


def test_roster_import_when_row_has_bad_email_shows_counts_and_row_error(app, admin_client, tenants):
    csv = (
        b"external_id,name,email\nE1,Person 1,\nE2,Renamed Two,\nE3,Three,not-an-email\nE4,Four,four@x.org\n"
    )
    response = admin_client.post(
        f"/admin/customers/{tenants['customer']}/employees/import",
        data={"file": (io.BytesIO(csv), "roster.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "row 4, email:" in text
    assert "<dt>Created</dt><dd>1</dd>" in text
    assert "<dt>Updated</dt><dd>1</dd>" in text
    assert "<dt>Unchanged</dt><dd>1</dd>" in text
    with app.app_context():
        ids = set(
            db.session.scalars(
                select(Employee.external_id).where(Employee.customer_id == tenants["customer"])
            )
        )
    assert ids == {"E1", "E2", "E4"}


def test_roster_import_when_columns_missing_error_next_to_file(admin_client, tenants):
    response = admin_client.post(
        f"/admin/customers/{tenants['customer']}/employees/import",
        data={"file": (io.BytesIO(b"foo,bar\n1,2\n"), "roster.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert b'id="file-error"' in response.data and b"needs columns" in response.data
