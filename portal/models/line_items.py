"""Line items: the canonical expense lines that partners send and invoices bill.

A line is unique per (partner, partner_reference), and remembers the upload and source row it came
from, so every invoice line can be traced back to the exact row of the exact file.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.catalog import EXPENSE_TYPES
from portal.extensions import db
from portal.models.base import UTCDateTime, utcnow
from portal.models.customers import Customer, Employee
from portal.models.partners import Partner


class LineItem(db.Model):
    __tablename__ = "line_items"
    __table_args__ = (
        UniqueConstraint("partner_id", "partner_reference"),
        Index("ix_line_items_customer_invoice", "customer_id", "invoice_id"),
        Index("ix_line_items_upload_row", "upload_id", "source_row"),
        CheckConstraint(
            f"expense_type IN ({', '.join(repr(t) for t in EXPENSE_TYPES)})", name="expense_type_known"
        ),
    )
    tenant_columns = {"partner": "partner_id", "customer": "customer_id"}

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    employee_id: Mapped[int] = mapped_column(ForeignKey("employees.id"), index=True)
    partner_reference: Mapped[str] = mapped_column(String(100))
    expense_type: Mapped[str] = mapped_column(String(16))
    amount_minor: Mapped[int] = mapped_column(BigInteger)  # negative for refunds and credits
    currency: Mapped[str] = mapped_column(String(3))
    service_date: Mapped[dt.date] = mapped_column(Date)
    description: Mapped[str] = mapped_column(String(500), default="")
    term: Mapped[str | None] = mapped_column(String(64))
    upload_id: Mapped[int] = mapped_column(ForeignKey("uploads.id"))
    source_row: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[str] = mapped_column(String(64))
    # The invoice the line currently sits on (NULL = unbilled); attached only where still NULL.
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    # A line an admin rejected back to the partner (from a denied invoice) is never billed.
    rejected_at = mapped_column(UTCDateTime, nullable=True)
    rejection_reason: Mapped[str | None] = mapped_column(String(500))
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    partner: Mapped[Partner] = relationship()
    customer: Mapped[Customer] = relationship()
    employee: Mapped[Employee] = relationship()

    def __repr__(self) -> str:
        return f"<LineItem {self.partner_reference} {self.amount_minor} {self.currency}>"
