"""Money: integer minor units plus an ISO 4217 code in storage, Decimal in code, Babel for people."""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_currency

from portal.ingest.values import CURRENCY_EXPONENTS


def to_decimal(amount_minor: int, currency: str) -> Decimal:
    """1234 USD -> Decimal('12.34'); exact, never float."""
    exponent = CURRENCY_EXPONENTS.get(currency, 2)
    return Decimal(amount_minor).scaleb(-exponent)


def format_money(amount_minor: int | None, currency: str | None, locale: str = "en_US") -> str:
    if amount_minor is None or not currency:
        return ""
    return format_currency(to_decimal(amount_minor, currency), currency, locale=locale)
