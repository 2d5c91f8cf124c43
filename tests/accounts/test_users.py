"""The account functions called without a page (as the CLI does): each checks, writes and audits."""

import pytest
from sqlalchemy import select

from portal import accounts
from portal.extensions import db
from portal.models import AuditEvent, Customer, Role, User


def _user(email: str) -> User:
    return db.session.scalar(select(User).where(User.email == email))


def _events(action: str) -> list[AuditEvent]:
    return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


def test_invite_user_when_partner_role_without_partner_refused(app, tenants):
    with app.app_context(), pytest.raises(accounts.ValidationError) as refused:
        accounts.invite_user(
            email="new@example.com", name="", role="partner", partner_id=None, customer_id=None
        )
    assert refused.value.field == "partner"


def test_invite_user_when_valid_creates_user_without_password_and_audits(app, tenants):
    with app.app_context():
        admin = _user("admin@example.com")
        user = accounts.invite_user(
            email="New@Example.com", name="New", role=Role.CUSTOMER, partner_id=None,
            customer_id=tenants["customer"], acting_user=admin,
        )  # fmt: skip
        db.session.commit()
        assert (user.email, user.password_hash, user.customer_id) == (
            "new@example.com",
            None,
            tenants["customer"],
        )
        assert _events("user.invited")[-1].actor_id == admin.id


def test_change_role_when_own_account_refused(app, tenants):
    with app.app_context():
        admin = _user("admin@example.com")
        with pytest.raises(accounts.ValidationError):
            accounts.change_role(admin, role="partner", partner_id=tenants["partner"], customer_id=None,
                                 acting_user=admin)  # fmt: skip


def test_deactivate_user_when_from_cli_ends_access_and_audits_reason(app, tenants):
    with app.app_context():
        user = _user("partner@example.com")
        version = user.session_version
        accounts.deactivate_user(user, reason="  left the company ")
        db.session.commit()
        assert not user.active and user.session_version == version + 1
        assert _events("user.deactivated")[-1].details["reason"] == "left the company"


def test_deactivate_user_when_already_inactive_refused(app, tenants):
    with app.app_context():
        user = _user("partner@example.com")
        accounts.deactivate_user(user, reason="gone")
        with pytest.raises(accounts.ValidationError):
            accounts.deactivate_user(user, reason="again")


def test_reactivate_user_when_active_records_nothing(app, tenants):
    with app.app_context():
        assert accounts.reactivate_user(_user("partner@example.com")) is False
        assert _events("user.reactivated") == []


def test_create_employee_when_id_taken_refused(app, tenants):
    with app.app_context():
        customer = db.session.get(Customer, tenants["customer"])
        with pytest.raises(accounts.ValidationError) as refused:
            accounts.create_employee(customer, external_id="E1", name="Someone Else")
        assert refused.value.field == "external_id"


def test_create_employee_when_reason_given_audits_it_with_the_values(app, tenants):
    with app.app_context():
        customer = db.session.get(Customer, tenants["customer"])
        accounts.create_employee(customer, external_id="E9", name=" Nine ", reason="quarantine release")
        details = _events("employee.created")[-1].details
        assert details == {
            "before": {},
            "after": {"external_id": "E9", "name": "Nine", "email": None},
            "reason": "quarantine release",
        }
