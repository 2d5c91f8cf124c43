"""Service dates as people write them (ISO, day-month-year, month names, Excel serials, timestamps).
Each parse returns an exact date or raises ValueProblem with a user-facing reason; nothing is guessed."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from portal.ingest.values import ValueProblem

_MONTHS = {
    name: index
    for index, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}

EXCEL_EPOCH = dt.date(1899, 12, 30)  # 1900 date system, including Excel's phantom 1900-02-29
EXCEL_SERIAL_RANGE = (20_000, 80_000)  # 1954..2119: plain integers outside this are not dates


_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
# A timestamp's date is the calendar date as written, whatever its offset: '2026-10-05T23:30:00+02:00'
# is 5 October where the charge happened, although it is 4 October in UTC. So the time and the
# offset are checked for sense and then dropped, never used to convert the date.
_TIME = r"(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?"
_OFFSET = r"(?:\s?(?:Z|UTC|GMT|[+-](\d{2})(?::?(\d{2}))?))?"
_ISO_DATETIME = re.compile(rf"^(\d{{4}}-\d{{2}}-\d{{2}})[T ]{_TIME}(){_OFFSET}$", re.IGNORECASE)
_TIME_AFTER_DATE = re.compile(
    rf"^(.*?\d\.?)(?:\s+|,\s*|T){_TIME}(?:\s?([AaPp])\.?[Mm]\.?)?{_OFFSET}$", re.IGNORECASE
)
_DAY_MONTH_YEAR = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)?[ \-/.]+([A-Za-z]+)\.?[ \-/.,]+(\d{4}|\d{2})$")
_MONTH_DAY_YEAR = re.compile(r"^([A-Za-z]+)\.?[ \-]+(\d{1,2})(?:st|nd|rd|th)?,?[ \-]+(\d{4})$")
_NUMERIC_DATE = re.compile(r"^\d{1,4}[/.\-]\d{1,2}[/.\-]\d{1,4}$")
_SERIAL = re.compile(r"^(\d+)(?:\.0+)?$")


def parse_date(
    text: str,
    *,
    formats: Sequence[str] = (),
    excel_serial: bool = True,
    min_year: int = 2000,
    max_year: int = 2100,
) -> dt.date:
    """Read a date: ISO, the profile's strptime formats, English month names, Excel serial numbers.

    Every interpretation is tried; if they disagree the date is ambiguous and refused.
    """
    s = " ".join(text.split())
    if not s:
        raise ValueProblem("date", "date is empty")
    candidates: dict[dt.date, str] = {}
    invalid = False

    def add(value: dt.date, how: str) -> None:
        candidates.setdefault(value, how)

    iso = _ISO_DATETIME.match(s)
    timed = iso or _TIME_AFTER_DATE.match(s)
    date_text = timed.group(1) if timed else s
    if timed and not _sensible_time(*timed.groups()[1:]):
        raise ValueProblem("date", f"'{s}' has an impossible time of day or offset; the date was not read")
    iso_text = iso.group(1) if iso else s
    if _ISO_DATE.match(iso_text):
        try:
            add(dt.date.fromisoformat(iso_text), "ISO")
        except ValueError:
            invalid = True

    for fmt in formats:
        for written in dict.fromkeys((s, date_text)):  # the whole text, then without its time
            try:
                add(dt.datetime.strptime(written, fmt).date(), fmt)  # noqa: DTZ007 - only the date is kept
            except ValueError:
                continue

    named = _month_name_date(date_text)
    if named is False:
        invalid = True
    elif named is not None:
        add(named, "month name")

    serial = _SERIAL.match(s)
    if excel_serial and serial:
        number = int(serial.group(1))
        if EXCEL_SERIAL_RANGE[0] <= number <= EXCEL_SERIAL_RANGE[1]:
            add(EXCEL_EPOCH + dt.timedelta(days=number), "Excel serial number")

    if len(candidates) > 1:
        options = " or ".join(sorted(d.isoformat() for d in candidates))
        raise ValueProblem("date", f"ambiguous date '{s}': could be {options}; set the profile's date format")
    if not candidates:
        if invalid:
            raise ValueProblem("date", f"'{s}' is not a valid date")
        if _NUMERIC_DATE.match(date_text):
            if formats:
                raise ValueProblem(
                    "date", f"date '{s}' does not match the profile's date formats ({', '.join(formats)})"
                )
            raise ValueProblem(
                "date",
                f"date '{s}' could be read several ways; set the profile's date format (e.g. %d/%m/%Y)",
            )
        raise ValueProblem(
            "date",
            f"could not read the date '{s}'; use YYYY-MM-DD, '5 Oct 2026' or set the profile's date format",
        )
    (value,) = candidates
    if not min_year <= value.year <= max_year:
        raise ValueProblem(
            "date", f"date {value.isoformat()} is outside the accepted years {min_year}-{max_year}"
        )
    return value


def _sensible_time(
    hour: str,
    minute: str,
    second: str | None,
    meridiem: str | None,
    offset_h: str | None,
    offset_m: str | None,
) -> bool:
    """A time of day and UTC offset that exist: 00:00-23:59 (1-12 with am/pm), offsets up to 23:59."""
    if meridiem:
        if not 1 <= int(hour) <= 12:
            return False
    elif int(hour) > 23:
        return False
    if int(minute) > 59 or (second is not None and int(second) > 60):  # 60: a leap second
        return False
    return (offset_h is None or int(offset_h) <= 23) and (offset_m is None or int(offset_m) <= 59)


def _month_name_date(s: str) -> dt.date | None | bool:
    """'5 Oct 2026', 'Oct 5, 2026', '05-Oct-26'; None if not this shape, False if the date is invalid."""
    match = _DAY_MONTH_YEAR.match(s)
    if match:
        day, month_name, year = match.groups()
    else:
        match = _MONTH_DAY_YEAR.match(s)
        if not match:
            return None
        month_name, day, year = match.groups()
    month = _MONTHS.get(month_name.lower())
    if month is None:
        return None
    full_year = int(year) if len(year) == 4 else 2000 + int(year)
    try:
        return dt.date(full_year, month, int(day))
    except ValueError:
        return False
