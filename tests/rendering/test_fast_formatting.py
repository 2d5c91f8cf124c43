"""The PDF's fast paths for formatting lines give what the general functions give, and the measured
columns land where they should."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.core.money import format_money, money_formatter
from portal.rendering import columns
from portal.rendering.columns import Column

CURRENCIES = ["USD", "EUR", "GBP", "JPY", "BHD", "CHF", "INR"]
WORDS = st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzÉü1-( "), max_size=80)


@given(st.sampled_from(CURRENCIES), st.integers(min_value=-(10**13), max_value=10**13))
def test_money_formatter_equals_format_money(currency, minor):
    assert money_formatter(currency)(minor) == format_money(minor, currency)


@given(st.floats(min_value=0, max_value=80))
def test_padding_when_any_gap_never_overshoots(gap):
    pad, width = columns.padding(gap)
    assert columns.text_width(pad) == pytest.approx(width)
    assert width <= gap + 1e-9


@given(st.floats(min_value=0.6, max_value=80))
def test_padding_when_gap_is_a_column_apart_comes_within_two_hundredths_of_an_em(gap):
    assert columns.padding(gap)[1] >= gap - 0.02


@given(WORDS, st.floats(min_value=3, max_value=40))
def test_wrap_when_text_is_long_keeps_every_line_within_the_width_and_every_word(text, width):
    lines = columns.wrap(text, width)
    assert all(columns.text_width(line) <= width for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")


def test_line_when_cells_are_placed_starts_left_cells_and_ends_right_cells_at_their_column():
    cols = [Column(0, 10), Column(10, 30), Column(30, 45, "right")]
    text = columns.line(["Oct 3, 2026", "Course", "$1,200.00"], cols)
    description_start = columns.text_width(text[: text.index("Course")])
    assert abs(description_start - 10) < 0.02
    assert abs(columns.text_width(text) - 45) < 0.02
