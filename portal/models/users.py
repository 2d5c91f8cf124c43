"""Login accounts: admins, partner users and customer contacts.

A partner user belongs to exactly one partner and a customer contact to exactly one customer; the
database enforces that pairing so that a user can never see two tenants' data.
"""

from __future__ import annotations

import contextlib
import enum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_login import UserMixin
from sqlalchemy import Boolean, CheckConstraint, Enum, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.base import UTCDateTime, utcnow
from portal.models.customers import Customer
from portal.models.partners import Partner

_hasher = PasswordHasher()  # Argon2id with the library's current recommended parameters


class Role(enum.StrEnum):
    ADMIN = "admin"
    PARTNER = "partner"
    CUSTOMER = "customer"


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "(role = 'admin' AND partner_id IS NULL AND customer_id IS NULL)"
            " OR (role = 'partner' AND partner_id IS NOT NULL AND customer_id IS NULL)"
            " OR (role = 'customer' AND customer_id IS NOT NULL AND partner_id IS NULL)",
            name="role_matches_tenant",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])
    )
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_login_at = mapped_column(UTCDateTime, nullable=True)
    # Bumped on password change or deactivation so that existing sessions stop working.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    partner: Mapped[Partner | None] = relationship()
    customer: Mapped[Customer | None] = relationship()

    def set_password(self, password: str) -> None:
        self.password_hash = _hasher.hash(password)
        self.session_version = (self.session_version or 0) + 1

    def check_password(self, password: str) -> bool:
        if not self.password_hash:
            return False
        try:
            return _hasher.verify(self.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return bool(self.active)

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    @property
    def tenant_label(self) -> str:
        if self.partner is not None:
            return self.partner.name
        if self.customer is not None:
            return self.customer.name
        return "Administration"

    def __repr__(self) -> str:
        return f"<User {self.email} {self.role}>"


def verify_dummy_password(password: str) -> None:
    """Spend the same time as a real check so that unknown emails cannot be told apart by timing."""
    with contextlib.suppress(VerificationError, InvalidHashError):
        _hasher.verify(_DUMMY_HASH, password)


_DUMMY_HASH = _hasher.hash("not-a-real-password")
