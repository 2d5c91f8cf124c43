"""The one place where tenant data is scoped to the current partner or customer.

Every query for tenant data goes through `scoped()` or `get_or_404()`, so a forgotten filter cannot
leak another tenant's rows; another tenant's object answers 404, never 403, so ids are not probed.
"""

from __future__ import annotations

from typing import TypeVar

from flask import abort
from flask_login import current_user
from sqlalchemy import Select, false, select

from portal.extensions import db
from portal.models.users import Role, User

M = TypeVar("M")


def scope_filter(model: type, user: User):
    """Return the WHERE clause restricting `model` to what `user` may see.

    Models declare `tenant_columns = {"partner": col, "customer": col}`; a model that declares
    no column for the user's role is invisible to that role.
    """
    if user.role == Role.ADMIN:
        return None
    columns = getattr(model, "tenant_columns", {})
    if user.role == Role.PARTNER and "partner" in columns:
        return getattr(model, columns["partner"]) == user.partner_id
    if user.role == Role.CUSTOMER and "customer" in columns:
        return getattr(model, columns["customer"]) == user.customer_id
    return false()


def scoped(model: type[M], user: User | None = None) -> Select:
    """A SELECT of `model` limited to the current (or given) user's tenant."""
    user = user or current_user
    stmt = select(model)
    clause = scope_filter(model, user)
    return stmt if clause is None else stmt.where(clause)


def get_or_404(model: type[M], object_id, user: User | None = None) -> M:
    """The object with this id if the user's tenant owns it; otherwise 404."""
    stmt = scoped(model, user).where(model.id == object_id)
    obj = db.session.execute(stmt).scalar_one_or_none()
    if obj is None:
        abort(404)
    return obj
