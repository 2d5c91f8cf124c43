"""Admin pages for partners: the list with a create form, and editing one partner.

The rules and audit events live in `portal.accounts.partners`; these views parse, call, and report.
"""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from sqlalchemy import select

from portal import accounts
from portal.admin import bp
from portal.admin.console_forms import PartnerForm, commit_edit, form_error
from portal.extensions import db
from portal.models import Partner
from portal.web.actions import saved


@bp.route("/partners", methods=["GET", "POST"])
def partners():
    """Every partner, and a form to create one (400 with the error next to the field if invalid)."""
    form = PartnerForm()
    if form.validate_on_submit():
        with saved(accounts.ValidationError, flash_error=False) as outcome:
            partner = accounts.create_partner(
                slug=form.slug.data or "",
                name=form.name.data,
                kind=form.kind.data,
                currency=form.currency.data,
            )
            outcome.message = f"Partner {partner.name} created."
        if outcome.ok:
            return redirect(url_for("admin.partners"))
        form_error(form, outcome.error)
    elif not form.is_submitted():
        form.currency.data = "USD"
    rows = db.session.scalars(select(Partner).order_by(Partner.name)).all()
    status = 400 if form.errors else 200
    return render_template("admin/console/partners.html", partners=rows, form=form), status


@bp.route("/partners/<id:partner_id>/edit", methods=["GET", "POST"])
def partner_edit(partner_id: int):
    """Change a partner's name, kind and default currency; audit `partner.updated` (before/after)."""
    partner = db.get_or_404(Partner, partner_id)
    form = PartnerForm(obj=None if request.method == "POST" else partner)
    if request.method == "GET":
        form.kind.data = partner.kind.value
        form.currency.data = partner.default_currency
    if form.validate_on_submit():
        try:
            change = accounts.update_partner(
                partner, name=form.name.data, kind=form.kind.data, currency=form.currency.data
            )
        except accounts.ValidationError as exc:
            form_error(form, exc)
        else:
            commit_edit(change, f"Partner {partner.name}")
            return redirect(url_for("admin.partners"))
    status = 400 if form.errors else 200
    return render_template("admin/console/partner_edit.html", partner=partner, form=form), status
