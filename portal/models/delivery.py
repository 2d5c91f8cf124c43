"""Deliverables of approved invoices (PDF, CSV) and their delivery to the customer's channels.

Each configured channel of a customer gets one `Delivery` per invoice, with every attempt recorded;
the invoice is delivered when every delivery has succeeded.
"""

from __future__ import annotations

import enum

from sqlalchemy import BigInteger, Boolean, Enum, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.base import UTCDateTime, utcnow
from portal.models.customers import Customer
from portal.models.invoices import Invoice


class InvoiceDocument(db.Model):
    """A rendered file of an invoice (pdf or csv), stored once; its sha256 is in the audit trail."""

    __tablename__ = "invoice_documents"
    __table_args__ = (UniqueConstraint("invoice_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # pdf | csv
    storage_key: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    invoice: Mapped[Invoice] = relationship()


class ChannelKind(enum.StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"
    ARCHIVE = "archive"


class DeliveryChannel(db.Model):
    """Where a customer wants its approved invoices: billing emails, a webhook URL, or the archive."""

    __tablename__ = "delivery_channels"
    tenant_columns = {"customer": "customer_id"}

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    kind: Mapped[ChannelKind] = mapped_column(
        Enum(ChannelKind, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])
    )
    # email: comma-separated billing addresses; webhook: the https URL; archive: unused (key layout fixed)
    target: Mapped[str] = mapped_column(String(2000), default="")
    secret: Mapped[str | None] = mapped_column(String(200))  # webhook signing secret ("whsec_..." base64)
    # After a rotation, the old secret also signs until this moment, so the receiver can switch over.
    previous_secret: Mapped[str | None] = mapped_column(String(200))
    previous_secret_until = mapped_column(UTCDateTime)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    customer: Mapped[Customer] = relationship()


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # gave up after every retry; an admin can redeliver
    WAIVED = "waived"  # failed, and an admin said with a reason that it need not succeed


class Delivery(db.Model):
    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("invoice_id", "channel_id"),)
    tenant_columns = {"customer": "customer_id"}

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("delivery_channels.id"))
    status: Mapped[DeliveryStatus] = mapped_column(
        Enum(DeliveryStatus, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
        default=DeliveryStatus.PENDING,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_attempt_at = mapped_column(UTCDateTime, nullable=True)
    succeeded_at = mapped_column(UTCDateTime, nullable=True)
    waived_reason: Mapped[str | None] = mapped_column(String(500))
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    invoice: Mapped[Invoice] = relationship()
    channel: Mapped[DeliveryChannel] = relationship()


class DeliveryAttempt(db.Model):
    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    attempted_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    ok: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)


class DisputeStatus(enum.StrEnum):
    OPEN = "open"
    REBILLED = "rebilled"  # put on a supplemental invoice
    REJECTED = "rejected"  # rejected back to the partner


class Dispute(db.Model):
    """A customer contact's flag on one line of an invoice, resolved by an admin."""

    __tablename__ = "disputes"
    __table_args__ = (UniqueConstraint("invoice_id", "line_item_id"),)
    tenant_columns = {"customer": "customer_id"}

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    line_item_id: Mapped[int] = mapped_column(ForeignKey("line_items.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    raised_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    comment: Mapped[str] = mapped_column(Text)
    status: Mapped[DisputeStatus] = mapped_column(
        Enum(DisputeStatus, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
        default=DisputeStatus.OPEN,
    )
    resolution_reason: Mapped[str | None] = mapped_column(Text)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at = mapped_column(UTCDateTime, nullable=True)
    supplemental_invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
