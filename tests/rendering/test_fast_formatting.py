"""The PDF's fast paths for formatting lines give exactly what the general functions give."""

import textwrap

from hypothesis import given
from hypothesis import strategies as st

from portal.core.money import format_money, money_formatter
from portal.rendering.pdf import _wrapped

CURRENCIES = ["USD", "EUR", "GBP", "JPY", "BHD", "CHF", "INR"]
TEXT = st.text(alphabet=st.sampled_from("ab É1-( )\t\n\r\x0b\x0c\xa0\u2003\u3000"), max_size=60)


@given(TEXT, st.integers(min_value=1, max_value=50))
def test_wrapped_equals_textwrap(text, width):
    assert _wrapped(text, width) == (textwrap.wrap(text, width) or [""])


@given(st.sampled_from(CURRENCIES), st.integers(min_value=-(10**13), max_value=10**13))
def test_money_formatter_equals_format_money(currency, minor):
    assert money_formatter(currency)(minor) == format_money(minor, currency)
