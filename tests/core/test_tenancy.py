"""The tenant scoping helper: each tenant sees only its own rows; another tenant's object is a 404."""

import pytest
from sqlalchemy import select
from werkzeug.exceptions import NotFound

from portal.core.tenancy import get_or_404, scoped
from portal.extensions import db
from portal.models import AuditEvent, Employee, User


def _user(email):
    return db.session.scalar(select(User).where(User.email == email))


def _employee(customer_id):
    return db.session.scalar(select(Employee).where(Employee.customer_id == customer_id))


def test_scoped_when_customer_lists_only_own_employees(app, tenants):
    with app.app_context():
        rows = db.session.scalars(scoped(Employee, _user("customer@example.com"))).all()
        assert {e.customer_id for e in rows} == {tenants["customer"]}
        assert len(rows) == 2


def test_get_or_404_when_other_customers_employee_answers_404(app, tenants):
    with app.app_context():
        other = _employee(tenants["customer2"])
        with pytest.raises(NotFound):
            get_or_404(Employee, other.id, _user("customer@example.com"))


def test_get_or_404_when_own_employee_returns_it(app, tenants):
    with app.app_context():
        own = _employee(tenants["customer"])
        assert get_or_404(Employee, own.id, _user("customer@example.com")) is own


def test_scoped_when_model_has_no_column_for_role_shows_nothing(app, tenants):
    """Partners have no claim on a customer's employees: the scope is empty, not everything."""
    with app.app_context():
        assert db.session.scalars(scoped(Employee, _user("partner@example.com"))).all() == []


def test_scoped_when_admin_sees_everything(app, tenants):
    with app.app_context():
        assert len(db.session.scalars(scoped(Employee, _user("admin@example.com"))).all()) == 4


def test_scoped_audit_events_when_partner_sees_only_own(app, tenants):
    with app.app_context():
        events = db.session.scalars(scoped(AuditEvent, _user("partner2@example.com"))).all()
        assert events and {e.partner_id for e in events} == {tenants["partner2"]}
