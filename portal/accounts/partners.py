"""Creating and editing partners (the universities and businesses that upload line items), audited."""

from __future__ import annotations

from sqlalchemy import select

from portal.accounts.rules import SLUG_RE, ValidationError, apply_changes, check_currency, check_name, choice
from portal.core import audit
from portal.extensions import db
from portal.models import Partner, PartnerKind


def create_partner(*, slug: str, name: str, kind: str = "university", currency: str = "USD") -> Partner:
    """Add a partner and audit `partner.created`; raises ValidationError (slug taken, bad currency...)."""
    slug = slug.strip().lower()
    if not SLUG_RE.match(slug):
        raise ValidationError("slug", "use 1-64 lowercase letters, digits and dashes (e.g. state-university)")
    if not name.strip():
        raise ValidationError("name", "a name is required")
    if db.session.scalar(select(Partner.id).where(Partner.slug == slug)):
        raise ValidationError("slug", f"a partner with slug {slug!r} already exists")
    partner = Partner(
        slug=slug,
        name=name.strip(),
        kind=choice(PartnerKind, kind, "kind"),
        default_currency=check_currency(currency),
    )
    db.session.add(partner)
    db.session.flush()
    audit.record(
        "partner.created",
        subject=partner,
        partner_id=partner.id,
        details={"slug": slug, "name": partner.name, "kind": partner.kind.value},
    )
    return partner


def update_partner(partner: Partner, *, name: str, kind: str, currency: str) -> dict:
    """Change a partner's name, kind and default currency; audit `partner.updated` with the changed
    fields only. Returns the change ({"before", "after"}; both empty when nothing changed)."""
    values = {
        "name": check_name(name),
        "kind": PartnerKind(kind),
        "default_currency": check_currency(currency),
    }
    change = apply_changes(partner, values)
    if change["after"]:
        audit.record("partner.updated", subject=partner, details=change, partner_id=partner.id)
    return change
