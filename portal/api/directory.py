"""Customers and partners over the API: an admin sees every one, a contact only its customer and a
partner user only its partner (another one answers 404, as in the pages)."""

from __future__ import annotations

import marshmallow as ma
from flask_smorest import Blueprint

from portal.api.auth import roles_required
from portal.api.pagination import PageArgs, page_schema, paginate
from portal.api.problems import abort_problem
from portal.core.tenancy import scoped
from portal.extensions import db
from portal.models import Customer, Partner

blp = Blueprint("api_directory", __name__, description="Customers and partners.")


class CustomerSchema(ma.Schema):
    code = ma.fields.String(required=True, metadata={"example": "ACME"})
    name = ma.fields.String(required=True)
    kind = ma.fields.Function(
        lambda c: c.kind.value, required=True, metadata={"enum": ["corporation", "private", "nonprofit"]}
    )
    timezone = ma.fields.String(required=True)
    locale = ma.fields.String(required=True)
    invoice_day = ma.fields.Integer(required=True)
    invoicing_enabled = ma.fields.Boolean(required=True)
    payment_terms_days = ma.fields.Integer(required=True)
    billing_address = ma.fields.String(allow_none=True, required=True)
    created_at = ma.fields.DateTime(required=True)


class PartnerSchema(ma.Schema):
    slug = ma.fields.String(required=True, metadata={"example": "state-u"})
    name = ma.fields.String(required=True)
    kind = ma.fields.Function(
        lambda p: p.kind.value, required=True, metadata={"enum": ["university", "business", "nonprofit"]}
    )
    default_currency = ma.fields.String(required=True)
    created_at = ma.fields.DateTime(required=True)


CustomerPageSchema = page_schema(CustomerSchema)
PartnerPageSchema = page_schema(PartnerSchema)


@blp.route("/customers")
@roles_required("admin", "customer")
@blp.arguments(PageArgs, location="query")
@blp.response(200, CustomerPageSchema)
def customers(args):
    """List customers (an admin: all; a contact: its own), oldest first."""
    return paginate(scoped(Customer), key=Customer.id, limit=args["limit"], cursor=args["cursor"]).as_dict()


@blp.route("/customers/<code>")
@roles_required("admin", "customer")
@blp.response(200, CustomerSchema)
def customer(code: str):
    """One customer by its code; another tenant's answers 404."""
    found = db.session.scalar(scoped(Customer).where(Customer.code == code.upper()))
    if found is None:
        abort_problem(404)
    return found


@blp.route("/partners")
@roles_required("admin", "partner")
@blp.arguments(PageArgs, location="query")
@blp.response(200, PartnerPageSchema)
def partners(args):
    """List partners (an admin: all; a partner user: its own)."""
    return paginate(scoped(Partner), key=Partner.id, limit=args["limit"], cursor=args["cursor"]).as_dict()


@blp.route("/partners/<slug>")
@roles_required("admin", "partner")
@blp.response(200, PartnerSchema)
def partner(slug: str):
    """One partner by its slug; another tenant's answers 404."""
    found = db.session.scalar(scoped(Partner).where(Partner.slug == slug.lower()))
    if found is None:
        abort_problem(404)
    return found
