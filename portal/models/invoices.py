"""Invoices: one per customer, billing period, currency and revision, with their lines and totals.

`invoice_lines` keeps which line items each revision billed, so a denied revision stays readable
after its lines moved to the next one; `invoice_totals` stores the breakdowns that pages and files
show, so they are never recomputed differently.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.base import UTCDateTime, utcnow
from portal.models.customers import Customer
from portal.models.users import User


class InvoiceStatus(enum.StrEnum):
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    DELIVERED = "delivered"
    DENIED = "denied"
    VOID = "void"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


class Invoice(db.Model):
    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint(
            "customer_id",
            "period_start",
            "currency",
            "revision",
            "supplement",
            name="uq_invoices_one_per_period",
        ),
        Index("ix_invoices_status_created", "status", "created_at"),
    )
    tenant_columns = {"customer": "customer_id"}

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    revision: Mapped[int] = mapped_column(Integer, default=1)
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    # 0 for the regular invoice; 1, 2 ... for supplemental invoices re-billing disputed lines.
    supplement: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    status: Mapped[InvoiceStatus] = mapped_column(
        Enum(InvoiceStatus, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e]),
        default=InvoiceStatus.PENDING_APPROVAL,
    )
    total_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    line_count: Mapped[int] = mapped_column(Integer, default=0)
    adjustment_minor: Mapped[int] = mapped_column(BigInteger, default=0)  # prior-period adjustments
    adjustment_count: Mapped[int] = mapped_column(Integer, default=0)
    employee_count: Mapped[int] = mapped_column(Integer, default=0)
    partner_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at = mapped_column(UTCDateTime, nullable=True)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision_comment: Mapped[str | None] = mapped_column(Text)
    deny_reason: Mapped[str | None] = mapped_column(Text)
    resolved_at = mapped_column(UTCDateTime, nullable=True)  # a denied revision dealt with by an admin
    void_reason: Mapped[str | None] = mapped_column(Text)
    delivered_at = mapped_column(UTCDateTime, nullable=True)
    # Set on approval: the approval date in the customer's zone plus its payment terms.
    due_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    reminded_at = mapped_column(UTCDateTime, nullable=True)
    # The job recorded with the approval that renders the PDF and CSV (its JobRecord id): the
    # invoice page shows its progress, or its failure, until the documents exist.
    render_job_id: Mapped[str | None] = mapped_column(String(36))

    customer: Mapped[Customer] = relationship()
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])

    @property
    def is_credit_note(self) -> bool:
        return self.total_minor < 0

    @property
    def period_label(self) -> str:
        return self.period_start.strftime("%B %Y")

    @property
    def kind_label(self) -> str:
        if self.is_credit_note:
            return "Credit note"
        return "Supplemental invoice" if self.supplement else "Invoice"

    def __repr__(self) -> str:
        return f"<Invoice {self.number} {self.status}>"


class InvoiceLine(db.Model):
    """A line item as billed by one invoice revision (written set-based, never per ORM object)."""

    __tablename__ = "invoice_lines"
    __table_args__ = (UniqueConstraint("invoice_id", "line_item_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    line_item_id: Mapped[int] = mapped_column(ForeignKey("line_items.id"), index=True)
    is_adjustment: Mapped[bool] = mapped_column(Boolean, default=False)


class InvoiceTotal(db.Model):
    """One subtotal of an invoice: per employee, per partner or per expense type, and per section."""

    __tablename__ = "invoice_totals"
    __table_args__ = (UniqueConstraint("invoice_id", "dimension", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"))
    dimension: Mapped[str] = mapped_column(String(16))  # employee | partner | expense_type
    key: Mapped[str] = mapped_column(String(64))  # employee id, partner id or the type itself
    label: Mapped[str] = mapped_column(String(200))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    line_count: Mapped[int] = mapped_column(Integer)


class InvoiceRun(db.Model):
    """That a customer's period was run (invoices made or not); one per customer and period.

    The daily scheduler checks this row, so a period with no lines is not re-run every day, and the
    unique key makes two concurrent runs of the same period create nothing twice.
    """

    __tablename__ = "invoice_runs"
    __table_args__ = (UniqueConstraint("customer_id", "period_start"),)
    tenant_columns = {"customer": "customer_id"}

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    period_start: Mapped[dt.date] = mapped_column(Date)
    ran_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    message: Mapped[str] = mapped_column(String(500), default="")
