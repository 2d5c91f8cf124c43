"""Billing periods and schedule due dates, across time zones and month lengths."""

import datetime as dt

import pytest

from portal.invoicing.periods import Period, due_period, local_date

UTC = dt.UTC


def at(text):
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "day,start,end",
    [
        ("2026-02-14", "2026-02-01", "2026-02-28"),
        ("2028-02-29", "2028-02-01", "2028-02-29"),
        ("2026-04-30", "2026-04-01", "2026-04-30"),
        ("2026-12-31", "2026-12-01", "2026-12-31"),
    ],
)
def test_period_of_day_spans_calendar_month(day, start, end):
    period = Period.of(dt.date.fromisoformat(day))
    assert (period.start.isoformat(), period.end.isoformat()) == (start, end)


def test_period_previous_of_january_is_december():
    assert Period.parse("2027-01").previous.key == "2026-12"


@pytest.mark.parametrize("text", ["2026-13", "26-10", "2026/10", "October"])
def test_period_parse_when_malformed_explains(text):
    with pytest.raises(ValueError, match="write it as YYYY-MM"):
        Period.parse(text)


def test_local_date_when_utc_is_past_midnight_in_new_york_is_previous_day():
    assert local_date(at("2026-11-01T03:00:00"), "America/New_York") == dt.date(2026, 10, 31)


def test_local_date_when_utc_evening_in_tokyo_is_next_day():
    assert local_date(at("2026-10-31T20:00:00"), "Asia/Tokyo") == dt.date(2026, 11, 1)


def test_due_when_invoice_day_reached_in_customer_zone_is_previous_month():
    assert due_period(at("2026-11-01T05:00:00"), "America/New_York", 1) == Period.parse("2026-10")


def test_due_when_still_previous_day_in_customer_zone_is_not_yet_october():
    # 03:00 UTC on 1 November is still 31 October in Los Angeles: October is not billable yet.
    assert due_period(at("2026-11-01T03:00:00"), "America/Los_Angeles", 1) == Period.parse("2026-09")


def test_due_when_tokyo_new_month_before_utc_is_due():
    assert due_period(at("2026-10-31T16:00:00"), "Asia/Tokyo", 1) == Period.parse("2026-10")


def test_due_on_day_28_of_february_bills_january():
    assert due_period(at("2027-02-28T12:00:00"), "UTC", 28) == Period.parse("2027-01")


def test_due_before_day_28_is_none():
    assert due_period(at("2027-02-27T12:00:00"), "UTC", 28) is None


def test_due_after_invoice_day_still_due_until_run():
    assert due_period(at("2026-11-20T12:00:00"), "UTC", 5) == Period.parse("2026-10")
