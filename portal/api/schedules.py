"""Customers' invoicing schedules over the API (admin only): read, change day and zone, enable,
disable, and trigger a run now (the admin page's "generate now"), through the same domain functions."""

from __future__ import annotations

import marshmallow as ma
from flask import url_for
from flask_login import current_user
from flask_smorest import Blueprint
from sqlalchemy import func, select

from portal import accounts, jobs
from portal.api.auth import roles_required
from portal.api.idempotency import idempotent
from portal.api.pagination import PageArgs, page_schema, paginate
from portal.api.problems import abort_problem
from portal.extensions import db
from portal.invoicing.build import run_period
from portal.invoicing.periods import Period
from portal.models import Customer, InvoiceRun
from portal.models.base import utcnow
from portal.web.inputs import InputError, parse_period

blp = Blueprint("api_schedules", __name__, description="Invoicing schedules of customers (admin).")


class ScheduleSchema(ma.Schema):
    customer = ma.fields.Function(lambda c: c.code, required=True, metadata={"example": "ACME"})
    customer_name = ma.fields.Function(lambda c: c.name, required=True)
    enabled = ma.fields.Function(lambda c: c.invoicing_enabled, required=True, metadata={"type": "boolean"})
    invoice_day = ma.fields.Integer(
        required=True, metadata={"description": "Day of the month (1-28) the last month is invoiced."}
    )
    timezone = ma.fields.String(required=True, metadata={"description": "The customer's IANA zone."})
    last_run_at = ma.fields.Method(
        "get_last_run_at", required=True, allow_none=True, metadata={"type": "string", "format": "date-time"}
    )

    def get_last_run_at(self, customer):
        ran_at = db.session.scalar(
            select(func.max(InvoiceRun.ran_at)).where(InvoiceRun.customer_id == customer.id)
        )
        return ran_at.isoformat() if ran_at else None


SchedulePageSchema = page_schema(ScheduleSchema)


class SchedulePatchSchema(ma.Schema):
    """Only the fields sent are changed."""

    class Meta:
        unknown = ma.RAISE

    enabled = ma.fields.Boolean()
    invoice_day = ma.fields.Integer(validate=ma.validate.Range(min=1, max=28))
    timezone = ma.fields.String(validate=ma.validate.Length(min=1, max=64))


class TriggerSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    period = ma.fields.String(
        metadata={"description": "The month to invoice, YYYY-MM; default: last month.", "example": "2026-01"},
        validate=ma.validate.Length(max=7),
    )


class TriggerResultSchema(ma.Schema):
    job_id = ma.fields.String(required=True)
    status = ma.fields.String(required=True)
    customer = ma.fields.String(required=True)
    period = ma.fields.String(required=True)
    schedule_url = ma.fields.String(required=True)


def _customer(code: str) -> Customer:
    customer = db.session.scalar(select(Customer).where(Customer.code == code.upper()))
    if customer is None:
        abort_problem(404)
    return customer


def _update(customer: Customer, **changes) -> None:
    """accounts.update_customer with the customer's other fields as they are (audits customer.updated)."""
    values = {
        "name": customer.name,
        "kind": customer.kind.value,
        "timezone": customer.timezone,
        "invoice_day": customer.invoice_day,
        "invoicing_enabled": customer.invoicing_enabled,
        **changes,
    }
    try:
        accounts.update_customer(customer, **values)
    except accounts.ValidationError as exc:
        db.session.rollback()
        abort_problem(422, errors=[{"field": exc.field, "message": exc.message}])
    db.session.commit()


@blp.route("/schedules")
@roles_required("admin")
@blp.arguments(PageArgs, location="query")
@blp.response(200, SchedulePageSchema)
def schedules(args):
    """Every customer's schedule."""
    return paginate(select(Customer), key=Customer.id, limit=args["limit"], cursor=args["cursor"]).as_dict()


@blp.route("/schedules/<customer>")
@roles_required("admin")
@blp.response(200, ScheduleSchema)
def schedule(customer: str):
    """One customer's schedule."""
    return _customer(customer)


@blp.route("/schedules/<customer>", methods=["PATCH"])
@roles_required("admin")
@blp.arguments(SchedulePatchSchema)
@blp.response(200, ScheduleSchema)
def schedule_update(changes, customer: str):
    """Change the invoice day, time zone or whether invoicing is on; audited as `customer.updated`."""
    found = _customer(customer)
    if "enabled" in changes:
        changes["invoicing_enabled"] = changes.pop("enabled")
    _update(found, **changes)
    return found


@blp.route("/schedules/<customer>/enable", methods=["POST"])
@roles_required("admin")
@idempotent
@blp.response(200, ScheduleSchema)
def schedule_enable(customer: str):
    """Turn the customer's monthly invoicing on (nothing changes if it already is)."""
    found = _customer(customer)
    _update(found, invoicing_enabled=True)
    return found


@blp.route("/schedules/<customer>/disable", methods=["POST"])
@roles_required("admin")
@idempotent
@blp.response(200, ScheduleSchema)
def schedule_disable(customer: str):
    """Turn the customer's monthly invoicing off: the scheduler skips it until enabled again."""
    found = _customer(customer)
    _update(found, invoicing_enabled=False)
    return found


@blp.route("/schedules/<customer>/trigger", methods=["POST"])
@roles_required("admin")
@idempotent
@blp.arguments(TriggerSchema, required=False)
@blp.response(202, TriggerResultSchema)
def schedule_trigger(args, customer: str):
    """Queue the customer's invoice run for a period now (default: last month), as the admin page's
    "generate now" does: it creates only what is missing. Answers 202 with the job's id."""
    found = _customer(customer)
    period_text = (args or {}).get("period")
    if period_text:
        try:
            period = parse_period(period_text)
        except InputError as exc:
            abort_problem(422, errors=[{"field": "period", "message": exc.description}])
    else:
        period = Period.of(utcnow().date()).previous
    record = jobs.enqueue(
        run_period,
        found.id,
        period.key,
        current_user.id,
        True,
        queue="invoices",
        description=f"Invoice {found.code} {period.key} (by {current_user.email})",
    )
    db.session.commit()
    return {
        "job_id": str(record.id),
        "status": record.status.value if hasattr(record.status, "value") else str(record.status),
        "customer": found.code,
        "period": period.key,
        "schedule_url": url_for("api_schedules.schedule", customer=found.code),
    }
