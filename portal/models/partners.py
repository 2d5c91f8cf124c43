"""Partners: universities and training providers that send expense line items.

A partner's users log in to upload files; everything a partner sees is scoped by `partner_id`.
"""

from __future__ import annotations

import enum

from sqlalchemy import Enum, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models.base import UTCDateTime, utcnow


class PartnerKind(enum.StrEnum):
    UNIVERSITY = "university"
    BUSINESS = "business"
    NONPROFIT = "nonprofit"


class Partner(db.Model):
    __tablename__ = "partners"
    tenant_columns = {"partner": "id"}  # a partner user sees its own partner (portal/core/tenancy.py)

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[PartnerKind] = mapped_column(
        Enum(PartnerKind, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e]),
        default=PartnerKind.UNIVERSITY,
    )
    default_currency: Mapped[str] = mapped_column(String(3), default="USD")
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    def __repr__(self) -> str:
        return f"<Partner {self.slug}>"
