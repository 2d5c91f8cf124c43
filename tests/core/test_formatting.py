"""Money, dates and times for people (portal.core.formatting) and the page filters that use the
viewer's locale (Accept-Language) and zone (a contact's company zone)."""

import datetime as dt

import pytest

from portal.core import formatting
from tests.factories import build

MOMENT = dt.datetime(2026, 11, 1, 15, 4, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("en_US", "Nov 1, 2026"), ("en_GB", "1 Nov 2026"), ("de_DE", "01.11.2026"), ("fr_FR", "1 nov. 2026")],
)
def test_date_when_locale_given_uses_its_format(locale, expected):
    assert formatting.date(dt.date(2026, 11, 1), locale) == expected.replace(" ", "\u00a0")


def test_date_never_breaks_inside_itself():
    assert " " not in formatting.date(dt.date(2026, 11, 1), "en_US")


def test_datetime_when_zone_given_shows_local_time_and_zone():
    text = formatting.datetime(MOMENT, "en_US", "America/New_York")
    assert text.replace("\u00a0", " ").replace("\u202f", " ") == "Nov 1, 2026 10:04 AM EST"


def test_date_of_a_moment_is_the_day_in_the_zone():
    late = dt.datetime(2026, 11, 2, 2, 0, tzinfo=dt.UTC)  # still Nov 1 in New York
    assert formatting.date(late, "en_US", "America/New_York") == "Nov\u00a01,\u00a02026"


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("en_US", "$1,234.56"), ("de_DE", "1.234,56\u00a0$"), ("fr_FR", "1\u202f234,56\u00a0$US")],
)
def test_money_when_locale_given_formats_amount_for_it(locale, expected):
    assert formatting.money(123456, "USD", locale) == expected


def test_period_names_the_month_in_the_locale():
    assert formatting.period(dt.date(2026, 11, 1), "de_DE") == "November\u00a02026"
    assert formatting.period(dt.date(2026, 11, 1), "fr_FR") == "novembre\u00a02026"


def test_pages_when_browser_prefers_german_format_money_for_germans(client, auth, billing, app):
    billing.add(123456, "2026-10-03")
    build(app)
    auth.login("contact@acme.example")
    page = client.get("/customer/", headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
    text = page.get_data(as_text=True)
    assert 'lang="de-DE"' in text
    assert "1.234,56\u00a0$" in text and "$1,234.56" not in text


def test_pages_when_language_not_offered_use_default_locale(client, auth, tenants):
    auth.login("customer@example.com")
    text = client.get("/customer/", headers={"Accept-Language": "ja-JP"}).get_data(as_text=True)
    assert 'lang="en-US"' in text
