"""Customers (employers who pay for the benefit) and their employees.

`Employee.external_id` is the id the customer and its partners use for a person; it is unique per
customer, never globally, because two employers may number their staff the same way.
"""

from __future__ import annotations

import enum

from sqlalchemy import Boolean, Enum, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.base import UTCDateTime, utcnow


class CustomerKind(enum.StrEnum):
    CORPORATION = "corporation"
    PRIVATE = "private"
    NONPROFIT = "nonprofit"


class Customer(db.Model):
    __tablename__ = "customers"
    tenant_columns = {"customer": "id"}  # a contact sees its own customer (portal/core/tenancy.py)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[CustomerKind] = mapped_column(
        Enum(CustomerKind, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e]),
        default=CustomerKind.CORPORATION,
    )
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Day of the month (1-28) on which the previous month's invoice is generated.
    invoice_day: Mapped[int] = mapped_column(Integer, default=1)
    invoicing_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Printed on the invoice PDF: where the invoice is addressed, and when it is due (Net N days).
    billing_address: Mapped[str | None] = mapped_column(Text)
    payment_terms_days: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    # Language and number/date formats of what is sent to the customer (PDF, emails), e.g. de_DE.
    locale: Mapped[str] = mapped_column(String(16), default="en_US", server_default="en_US")
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    employees: Mapped[list[Employee]] = relationship(back_populates="customer", lazy="raise_on_sql")

    @property
    def payment_terms(self) -> str:
        return "Due on receipt" if self.payment_terms_days == 0 else f"Net {self.payment_terms_days}"

    @property
    def billing_address_lines(self) -> list[str]:
        return [line.strip() for line in (self.billing_address or "").splitlines() if line.strip()]

    def __repr__(self) -> str:
        return f"<Customer {self.code}>"


class CustomerAlias(db.Model):
    """How one partner names one of our customers in its files ("Contoso Ltd." for CONTOSO).

    `alias_key` is the name folded for matching (portal.ingest.customers.name_key: case, accents,
    punctuation and spacing ignored); one partner cannot give one name to two customers.
    """

    __tablename__ = "customer_aliases"
    __table_args__ = (UniqueConstraint("partner_id", "alias_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    alias: Mapped[str] = mapped_column(String(200))
    alias_key: Mapped[str] = mapped_column(String(200))
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    customer: Mapped[Customer] = relationship()


class Employee(db.Model):
    __tablename__ = "employees"
    __table_args__ = (UniqueConstraint("customer_id", "external_id"),)
    # Tenant scoping (see portal/core/tenancy.py): customers see their own employees only.
    tenant_columns = {"customer": "customer_id"}

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    external_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)

    customer: Mapped[Customer] = relationship(back_populates="employees")

    def __repr__(self) -> str:
        return f"<Employee {self.external_id}>"
