"""Payment terms: when an approved invoice is due (kept apart from the lifecycle so that rendering,
which the lifecycle calls, can use it too)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from portal.models import Customer


def due_date(customer: Customer, approved_at: dt.datetime) -> dt.date:
    """The approval's date where the customer is, plus its payment terms (Net 30: 30 days later)."""
    local_day = approved_at.astimezone(ZoneInfo(customer.timezone or "UTC")).date()
    return local_day + dt.timedelta(days=customer.payment_terms_days or 0)
