"""What every command group shares: a domain error ends the command with its message, after a
rollback; a partner named by its slug on the command line."""

from __future__ import annotations

import click
from sqlalchemy import select

from portal.extensions import db
from portal.models import Partner


def fail(exc: Exception) -> None:
    """Roll back and end the command with the error's message (exit status 1)."""
    db.session.rollback()
    raise click.ClickException(str(exc))


def find_partner(slug: str) -> Partner:
    """The partner with this slug, or the command ends saying there is none."""
    partner = db.session.scalar(select(Partner).where(Partner.slug == slug.strip().lower()))
    if partner is None:
        raise click.ClickException(f"no partner with slug {slug!r}")
    return partner
