"""Queue messages that announced a partner file, remembered so a redelivered one never imports twice.

One row per file a message named (an S3 event may name several): the message id and the record's
place in it are unique, and the row points at the upload the file became.
"""

from __future__ import annotations

import enum

from sqlalchemy import BigInteger, Enum, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models.base import UTCDateTime, utcnow
from portal.models.uploads import Upload


class QueueOutcome(enum.StrEnum):
    RECEIVED = "received"  # the file became a new upload
    DUPLICATE = "duplicate"  # the same file was already an upload (by bucket/key/etag or sha256)


class QueueMessage(db.Model):
    __tablename__ = "queue_messages"
    __table_args__ = (
        UniqueConstraint("message_id", "record_index"),
        Index("ix_queue_messages_object", "bucket", "object_key", "etag"),
    )
    tenant_columns = {"partner": "partner_id"}

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(128))
    record_index: Mapped[int] = mapped_column(Integer, default=0)
    bucket: Mapped[str] = mapped_column(String(255))
    object_key: Mapped[str] = mapped_column(String(1024))
    etag: Mapped[str | None] = mapped_column(String(128))
    sha256: Mapped[str | None] = mapped_column(String(64))
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    upload_id: Mapped[int] = mapped_column(ForeignKey("uploads.id"), index=True)
    outcome: Mapped[QueueOutcome] = mapped_column(
        Enum(QueueOutcome, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])
    )
    received_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    upload: Mapped[Upload] = relationship()
