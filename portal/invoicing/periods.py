"""Billing periods (calendar months in the customer's time zone) and when each customer is due.

A customer with invoice day D is due for the previous month's invoice from day D of the current
month, counted in its own time zone, until that period has been run once.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

_PERIOD_RE = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class Period:
    start: dt.date  # first day of the month
    end: dt.date  # last day of the month

    @classmethod
    def of(cls, day: dt.date) -> Period:
        start = day.replace(day=1)
        next_start = (start + dt.timedelta(days=32)).replace(day=1)
        return cls(start, next_start - dt.timedelta(days=1))

    @classmethod
    def parse(cls, text: str) -> Period:
        match = _PERIOD_RE.match(text.strip())
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise ValueError(f"{text!r} is not a period; write it as YYYY-MM, e.g. 2026-10")
        return cls.of(dt.date(int(match.group(1)), int(match.group(2)), 1))

    @property
    def previous(self) -> Period:
        return Period.of(self.start - dt.timedelta(days=1))

    @property
    def key(self) -> str:
        return self.start.strftime("%Y-%m")

    @property
    def label(self) -> str:
        return self.start.strftime("%B %Y")

    def __str__(self) -> str:
        return self.key


def local_date(now: dt.datetime, timezone: str) -> dt.date:
    """The calendar date at instant `now` (aware) in `timezone`."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(ZoneInfo(timezone)).date()


def due_period(now: dt.datetime, timezone: str, invoice_day: int) -> Period | None:
    """The period a customer is due to be invoiced for at `now`, or None before its invoice day."""
    today = local_date(now, timezone)
    if today.day < invoice_day:
        return None
    return Period.of(today).previous
