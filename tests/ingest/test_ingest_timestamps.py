"""Service dates written as timestamps: the calendar date as written, never converted through UTC,
whether the timestamp comes as text (CSV, JSON) or as an Excel date-time cell."""

import datetime as dt
import io
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import Workbook

from portal.ingest.dates import parse_date
from portal.ingest.formats.base import SourceRow, cell_text
from portal.ingest.formats.detect import open_source
from portal.ingest.mapping import MappingProfile
from portal.ingest.normalize import RowNormalizer, normalize_row
from portal.ingest.values import ValueProblem
from tests.samples import PROFILE

DATA = Path(__file__).resolve().parents[1] / "data"
D = dt.date(2026, 10, 5)


@pytest.mark.parametrize(
    "text",
    [
        "2026-10-05T18:30:00-05:00",  # 23:30 UTC, still the 5th
        "2026-10-05 23:30:00+02:00",  # 21:30 UTC
        "2026-10-05T23:59:59.999999-12:00",  # the 6th in UTC
        "2026-10-05T00:15:00+14:00",  # the 4th in UTC
        "2026-10-05T18:30-0500",
        "2026-10-05T18:30:00-05",
        "2026-10-05 18:30:00 UTC",
        "2026-10-05t18:30:00z",
        "2026-10-05 18:30 +02:00",
    ],
)
def test_parse_date_when_timestamp_has_offset_returns_date_as_written(text):
    assert parse_date(text) == D


@pytest.mark.parametrize(
    ("text", "formats"),
    [
        ("10/05/2026 18:30", ["%m/%d/%Y"]),
        ("05.10.2026 23:30:00", ["%d.%m.%Y"]),
        ("10/05/2026 6:30 PM", ["%m/%d/%Y"]),
        ("5 Oct 2026 18:30", []),
        ("Oct 5, 2026 6:30 p.m.", []),
        ("10/05/2026 18:30", ["%m/%d/%Y %H:%M"]),
    ],
)
def test_parse_date_when_profile_format_date_has_a_time_reads_the_date(text, formats):
    assert parse_date(text, formats=formats) == D


@pytest.mark.parametrize(
    "text", ["2026-10-05T24:30:00", "2026-10-05T18:61", "2026-10-05T18:30+25:00", "10/05/2026 13:30 PM"]
)
def test_parse_date_when_time_or_offset_impossible_refuses_naming_it(text):
    with pytest.raises(ValueProblem, match="impossible time of day or offset"):
        parse_date(text, formats=["%m/%d/%Y"])


def test_parse_date_when_slash_timestamp_without_format_still_asks_for_format():
    with pytest.raises(ValueProblem, match="set the profile's date format"):
        parse_date("10/05/2026 18:30")


@given(
    date=st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 12, 31)),
    time=st.times(),
    offset_minutes=st.integers(min_value=-14 * 60, max_value=14 * 60),
    separator=st.sampled_from(["T", " "]),
    style=st.sampled_from(["iso", "no seconds", "compact offset", "spaced offset"]),
)
def test_parse_date_for_any_date_time_and_offset_returns_the_written_date(
    date, time, offset_minutes, separator, style
):
    stamp = dt.datetime.combine(date, time, tzinfo=dt.timezone(dt.timedelta(minutes=offset_minutes)))
    text = stamp.isoformat(sep=separator)
    if style == "no seconds":
        text = stamp.isoformat(sep=separator, timespec="minutes")
    elif style == "compact offset":
        text = text[:-6] + text[-6:].replace(":", "")
    elif style == "spaced offset":
        text = text[:-6] + " " + text[-6:]
    assert parse_date(text) == date


@given(
    date=st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 12, 31)),
    time=st.times().filter(lambda t: t != dt.time(0, 0)),
)
def test_excel_date_time_cell_for_any_date_and_time_gives_the_date(date, time):
    assert parse_date(cell_text(dt.datetime.combine(date, time))) == date


def workbook_with_dates(*stamps):
    wb = Workbook()
    ws = wb.active
    header = list(PROFILE["columns"].values())
    ws.append(header)
    for n, stamp in enumerate(stamps, start=1):
        ws.append(["E100", "Ana", "ACME", f"T-{n}", "Tuition", 10, "USD", stamp, "", ""])
    buffer = io.BytesIO()
    wb.save(buffer)
    buffer.seek(0)
    return buffer


def test_xlsx_date_time_cells_give_the_calendar_date_of_the_cell():
    profile = MappingProfile.from_json_dict(PROFILE)
    stream = workbook_with_dates(dt.datetime(2026, 10, 5, 23, 30), dt.datetime(2026, 10, 5, 0, 0, 1))
    with open_source(stream) as parsed:
        rows = list(parsed.rows)
    assert [normalize_row(r, profile).service_date for r in rows] == [D, D]


def test_sample_xlsx_with_late_evening_date_time_keeps_its_date():
    profile = MappingProfile.from_json_dict(PROFILE)
    with open(DATA / "lines_trailing.xlsx", "rb") as fh, open_source(fh) as parsed:
        first = next(parsed.rows)
    assert first.cells["Date of Service"] == "2026-01-15T23:30:00"
    assert normalize_row(first, profile).service_date == dt.date(2026, 1, 15)


@pytest.mark.parametrize(
    "stamp",
    ["2026-10-05T18:30:00-05:00", "2026-10-05 23:30:00+02:00", "2026-10-05T25:00", "10/05/2026 18:30"],
)
def test_row_normalizer_on_timestamps_gives_what_normalize_row_gives(stamp):
    profile = MappingProfile.from_json_dict({**PROFILE, "date_formats": ["%m/%d/%Y"]})
    cells = {header: "" for header in PROFILE["columns"].values()}
    cells.update({"Employee ID": "E1", "Employer": "ACME", "Transaction ID": "T-1", "Fee Type": "Tuition"})
    row = SourceRow(2, {**cells, "Amount": "10.00", "Date of Service": stamp})
    assert RowNormalizer(profile)(row) == normalize_row(row, profile)
