"""Forms of the admin console (partners, customers, employees, users, confirmations) and the helpers
views use with them: tenant choices, a domain error shown next to its field, "saved" or "nothing changed".
"""

from __future__ import annotations

from flask import flash
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import select
from wtforms import (
    BooleanField,
    EmailField,
    IntegerField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional

from portal.accounts import ValidationError
from portal.core.formatting import LOCALES
from portal.extensions import db
from portal.models import Customer, CustomerKind, Partner, PartnerKind, Role

NONE = 0  # "no partner / no customer" in the tenant selects


def _choices(enum_cls):
    return [(m.value, m.value.capitalize()) for m in enum_cls]


class PartnerForm(FlaskForm):
    slug = StringField(
        "Slug (used in file names and links, e.g. state-university)", validators=[Length(max=64)]
    )
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    kind = SelectField("Kind", choices=_choices(PartnerKind))
    currency = StringField(
        "Default currency (ISO 4217, e.g. USD)", validators=[DataRequired(), Length(max=3)]
    )
    submit = SubmitField("Save partner")


class CustomerForm(FlaskForm):
    code = StringField("Code (e.g. ACME)", validators=[Length(max=32)])
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    kind = SelectField("Kind", choices=_choices(CustomerKind))
    timezone = StringField("Time zone (e.g. America/New_York)", validators=[DataRequired(), Length(max=64)])
    invoice_day = IntegerField(
        "Invoice day (1-28)",
        validators=[DataRequired(), NumberRange(1, 28, message="Choose a day from 1 to 28.")],
    )
    invoicing_enabled = BooleanField("Invoicing enabled")
    billing_address = TextAreaField(
        "Billing address (printed on the invoice; one line per line)", validators=[Length(max=1000)]
    )
    payment_terms_days = IntegerField(
        "Payment terms in days (30 = Net 30, 0 = due on receipt)",
        validators=[Optional(), NumberRange(0, 180, message="Choose from 0 to 180 days.")],
    )
    # Checked by accounts.check_locale (its message names the offered locales); absent: unchanged.
    locale = SelectField(
        "Language and formats of invoices and emails",
        choices=list(LOCALES.items()),
        validate_choice=False,
        validators=[Optional()],
    )
    submit = SubmitField("Save customer")


class EmployeeForm(FlaskForm):
    external_id = StringField("Employee ID", validators=[DataRequired(), Length(max=64)])
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    email = EmailField("Email (optional)", validators=[Optional(), Email(), Length(max=254)])
    submit = SubmitField("Save employee")


class RosterForm(FlaskForm):
    file = FileField(
        "Roster CSV (columns: external_id, name, email)", validators=[FileRequired("Choose a file.")]
    )
    submit = SubmitField("Import roster")


class TenantFields:
    """Role plus the partner or customer it belongs to; the view fills the choices."""

    role = SelectField("Role", choices=_choices(Role))
    partner = SelectField("Partner (for partner users)", coerce=int, choices=[(NONE, "—")])
    customer = SelectField("Customer (for customer contacts)", coerce=int, choices=[(NONE, "—")])


class InviteForm(TenantFields, FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Email(), Length(max=254)])
    name = StringField("Name", validators=[Optional(), Length(max=200)])
    submit = SubmitField("Send invitation")


class RoleForm(TenantFields, FlaskForm):
    submit = SubmitField("Change role")


class DeactivateForm(FlaskForm):
    reason = TextAreaField(
        "Reason (kept in the audit trail)",
        validators=[DataRequired("Say why the account is deactivated."), Length(max=500)],
    )
    confirm = BooleanField(
        "I understand that this user is logged out now and cannot log in again until reactivated",
        validators=[DataRequired("Tick this box to confirm.")],
    )
    submit = SubmitField("Deactivate user")


def fill_tenant_choices(form) -> None:
    """Offer every partner and customer in the tenant selects of `form` (with "—" for none)."""
    form.partner.choices = [(NONE, "—")] + [
        (p.id, f"{p.name} ({p.slug})") for p in db.session.scalars(select(Partner).order_by(Partner.name))
    ]
    form.customer.choices = [(NONE, "—")] + [
        (c.id, f"{c.code} · {c.name}") for c in db.session.scalars(select(Customer).order_by(Customer.code))
    ]


def form_error(form, exc: ValidationError) -> None:
    """Show a domain ValidationError next to its form field (or, if the form has none, at the top)."""
    field = getattr(form, exc.field, None)
    if field is not None and hasattr(field, "errors"):
        field.errors = [*field.errors, exc.message] if isinstance(field.errors, list) else [exc.message]
    else:
        flash(f"{exc.field}: {exc.message}", "error")


def commit_edit(change: dict, label: str) -> None:
    """After an accounts.update_*: commit and say "saved", or say nothing changed (no event, no commit)."""
    if not change["after"]:
        flash("Nothing changed.", "info")
        return
    db.session.commit()
    flash(f"{label} saved.", "success")
