"""Money: integer minor units plus an ISO 4217 code in storage, Decimal in code, Babel for people."""

from __future__ import annotations

from decimal import Decimal

from babel import Locale
from babel.numbers import format_currency, parse_pattern

from portal.core.catalog import CURRENCY_EXPONENTS


def to_decimal(amount_minor: int, currency: str) -> Decimal:
    """1234 USD -> Decimal('12.34'); exact, never float."""
    exponent = CURRENCY_EXPONENTS.get(currency, 2)
    return Decimal(amount_minor).scaleb(-exponent)


def format_money(amount_minor: int | None, currency: str | None, locale: str = "en_US") -> str:
    if amount_minor is None or not currency:
        return ""
    return format_currency(to_decimal(amount_minor, currency), currency, locale=locale)


def money_formatter(currency: str, locale: str = "en_US"):
    """A `format_money` for one currency, for formatting thousands of amounts (the invoice PDF).

    Same text as `format_money`, with the locale and its currency pattern looked up once instead of
    on every call, which is most of Babel's time per amount.
    """
    babel_locale = Locale.parse(locale)
    pattern = parse_pattern(babel_locale.currency_formats["standard"])

    def format_amount(amount_minor: int) -> str:
        return pattern.apply(to_decimal(amount_minor, currency), babel_locale, currency=currency)

    return format_amount
