"""Money, dates and times for people, with Babel, in a given locale and time zone.

Pages format for the viewer (portal.web.locale picks the locale and zone); the PDF and emails for
the customer (`Customer.locale`, `Customer.timezone`). Dates and times never break inside
themselves: their spaces are non-breaking, so a table cell shows "Nov 1, 2026", never "Nov 1,/2026".
"""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date as babel_date
from babel.dates import format_time as babel_time
from babel.numbers import format_decimal

from portal.core.money import format_money

# The locales offered (customer setting, Accept-Language): code -> name shown in the select.
LOCALES = {
    "en_US": "English (United States)",
    "en_GB": "English (United Kingdom)",
    "en_CA": "English (Canada)",
    "fr_CA": "Français (Canada)",
    "de_DE": "Deutsch (Deutschland)",
    "fr_FR": "Français (France)",
    "es_ES": "Español (España)",
    "nl_NL": "Nederlands (Nederland)",
}
DEFAULT_LOCALE = "en_US"

_NBSP = "\u00a0"


def _glued(text: str) -> str:
    return text.replace(" ", _NBSP)


# A page formats the same few amounts and dates many times (a lines table repeats them row after
# row) and Babel takes tens of microseconds a call: remember the texts, a bounded number of them.
_CACHE_SIZE = 8192


@functools.lru_cache(maxsize=_CACHE_SIZE)
def money(amount_minor: int | None, currency: str | None, locale: str = DEFAULT_LOCALE) -> str:
    """1234, "USD" -> "$12.34" (en_US), "12,34 $" (fr_FR); "" when there is no amount."""
    return format_money(amount_minor, currency, locale)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _date_text(value: dt.date, locale: str, fmt: str) -> str:
    return _glued(babel_date(value, format=fmt, locale=locale))


def number(value: int | None, locale: str = DEFAULT_LOCALE) -> str:
    """12345 -> "12,345" (en_US), "12.345" (de_DE)."""
    return "" if value is None else format_decimal(value, locale=locale)


def date(
    value: dt.date | dt.datetime | None, locale: str = DEFAULT_LOCALE, tz: str = "UTC", fmt: str = "medium"
) -> str:
    """A calendar date: "Nov 1, 2026" (en_US), "1 Nov 2026" (en_GB), "01.11.2026" (de_DE).

    A datetime is first moved into `tz`, so "today" is the viewer's today.
    """
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = value.astimezone(ZoneInfo(tz)).date()
    return _date_text(value, locale, fmt)


def datetime(
    value: dt.datetime | None, locale: str = DEFAULT_LOCALE, tz: str = "UTC", seconds: bool = False
) -> str:
    """A moment in `tz`, with the zone: "Nov 1, 2026, 3:04 PM UTC". Breaks only between date and time."""
    if value is None:
        return ""
    local = value.astimezone(ZoneInfo(tz))
    day = babel_date(local.date(), format="medium", locale=locale)
    clock = babel_time(local.timetz(), format="medium" if seconds else "short", locale=locale)
    return f"{_glued(day)} {_glued(clock)}{_NBSP}{local.strftime('%Z')}"


def period(start: dt.date | None, locale: str = DEFAULT_LOCALE) -> str:
    """A billing month: "November 2026" (en_US), "November 2026" (de_DE), "novembre 2026" (fr_FR)."""
    return "" if start is None else _glued(babel_date(start, format="LLLL y", locale=locale))


def month(start: dt.date, locale: str = DEFAULT_LOCALE) -> str:
    """A short month for chart axes: "Nov" (en_US), "nov." (fr_FR)."""
    return babel_date(start, format="LLL", locale=locale)


def language_tag(locale: str) -> str:
    """en_US -> "en-US", for `<html lang>`."""
    parsed = Locale.parse(locale)
    return f"{parsed.language}-{parsed.territory}" if parsed.territory else parsed.language
