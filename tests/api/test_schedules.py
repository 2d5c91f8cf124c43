"""Schedules (admin): read, PATCH with validation, enable/disable and trigger, audited like the pages."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.invoicing.periods import Period
from portal.models import AuditEvent, Customer, JobRecord
from portal.models.base import utcnow


def _customer(app, code="ACME") -> Customer:
    with app.app_context():
        customer = db.session.scalar(select(Customer).where(Customer.code == code))
        db.session.expunge(customer)
        return customer


def _events(app, action):
    with app.app_context():
        return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


def _jobs(app):
    with app.app_context():
        return db.session.scalars(select(JobRecord).where(JobRecord.func.like("%run_period"))).all()


def test_schedules_when_admin_lists_every_customers_schedule(as_role):
    response = as_role("admin").get("/schedules")
    assert response.status_code == 200
    first = response.json["items"][0]
    assert first == {
        "customer": "ACME",
        "customer_name": "Acme Corp",
        "enabled": True,
        "invoice_day": 1,
        "timezone": "America/New_York",
        "last_run_at": None,
    }


@pytest.mark.parametrize("role", ["partner", "customer"])
def test_schedules_when_not_admin_answers_403(as_role, role):
    assert as_role(role).get("/schedules/ACME").status_code == 403


def test_schedule_when_unknown_customer_answers_404(as_role):
    assert as_role("admin").get("/schedules/NOPE").status_code == 404


def test_patch_schedule_when_valid_changes_it_and_audits(app, as_role):
    response = as_role("admin").patch("/schedules/ACME", json={"invoice_day": 15, "timezone": "Europe/Paris"})
    assert response.status_code == 200
    assert response.json["invoice_day"] == 15 and response.json["timezone"] == "Europe/Paris"
    customer = _customer(app)
    assert (customer.invoice_day, customer.timezone) == (15, "Europe/Paris")
    (event,) = _events(app, "customer.updated")
    assert event.actor_label == "admin@example.com"
    assert event.details["after"] == {"invoice_day": 15, "timezone": "Europe/Paris"}


def test_patch_schedule_when_day_out_of_range_answers_422_naming_the_field(app, as_role):
    response = as_role("admin").patch("/schedules/ACME", json={"invoice_day": 31})
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert [e["field"] for e in response.json["errors"]] == ["invoice_day"]
    assert _customer(app).invoice_day == 1


def test_patch_schedule_when_zone_unknown_answers_422_from_the_domain_rule(app, as_role):
    response = as_role("admin").patch("/schedules/ACME", json={"timezone": "Mars/Olympus"})
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "timezone"
    assert _customer(app).timezone == "America/New_York"


def test_patch_schedule_when_unknown_field_answers_422(as_role):
    response = as_role("admin").patch("/schedules/ACME", json={"name": "Renamed"})
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "name"


def test_patch_schedule_when_contact_answers_403_and_changes_nothing(app, as_role):
    assert as_role("customer").patch("/schedules/ACME", json={"invoice_day": 5}).status_code == 403
    assert _customer(app).invoice_day == 1


def test_disable_schedule_when_admin_turns_invoicing_off_and_audits(app, as_role):
    response = as_role("admin").post("/schedules/ACME/disable")
    assert response.status_code == 200 and response.json["enabled"] is False
    assert _customer(app).invoicing_enabled is False
    assert _events(app, "customer.updated")[0].details["after"] == {"invoicing_enabled": False}


def test_enable_schedule_when_disabled_turns_it_back_on(app, as_role):
    client = as_role("admin")
    client.post("/schedules/GLOBEX/disable")
    response = client.post("/schedules/GLOBEX/enable")
    assert response.json["enabled"] is True
    assert _customer(app, "GLOBEX").invoicing_enabled is True


def test_trigger_schedule_when_admin_queues_last_months_run(app, as_role):
    response = as_role("admin").post("/schedules/ACME/trigger")
    assert response.status_code == 202
    last_month = Period.of(utcnow().date()).previous.key
    assert response.json["period"] == last_month and response.json["customer"] == "ACME"
    (job,) = _jobs(app)
    assert str(job.id) == response.json["job_id"]
    assert job.args[:2] == [_customer(app).id, last_month] and job.queue == "invoices"


def test_trigger_schedule_when_period_given_queues_that_period(app, as_role):
    response = as_role("admin").post("/schedules/ACME/trigger", json={"period": "2026-01"})
    assert response.status_code == 202 and response.json["period"] == "2026-01"
    assert _jobs(app)[0].args[1] == "2026-01"


def test_trigger_schedule_when_period_invalid_answers_422_and_queues_nothing(app, as_role):
    response = as_role("admin").post("/schedules/ACME/trigger", json={"period": "2026-13"})
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "period"
    assert _jobs(app) == []


def test_trigger_schedule_when_partner_answers_403(app, as_role):
    assert as_role("partner").post("/schedules/ACME/trigger").status_code == 403
    assert _jobs(app) == []
