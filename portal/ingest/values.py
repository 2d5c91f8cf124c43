"""Parsers for single values as people write them: amounts, currencies, expense types (dates are in
`dates.py`). Each returns an exact value or raises ValueProblem with a user-facing reason; nothing is
guessed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal

from portal.core.catalog import CURRENCY_EXPONENTS, EXPENSE_TYPES

# Only symbols that name one currency; "$" is taken as USD by product decision.
CURRENCY_SYMBOLS: dict[str, str] = {"US$": "USD", "$": "USD", "€": "EUR", "£": "GBP"}

# Amounts beyond this (in minor units) are refused: far above any real invoice, and it keeps
# values inside a signed 64-bit database column whatever the exponent.
MAX_MINOR_UNITS = 10**15

BUILTIN_EXPENSE_TYPE_SYNONYMS: dict[str, str] = {
    "Tuition Fee": "tuition",
    "Tuition Fees": "tuition",
    "Course Tuition": "tuition",
    "Books & Materials": "materials",
    "Books": "materials",
    "Book": "materials",
    "Course Materials": "materials",
    "Material": "materials",
    "Textbooks": "materials",
    "Textbook": "materials",
    "Tutoring Session": "tutoring",
    "Tutoring Sessions": "tutoring",
    "Tutor": "tutoring",
    "Registration Fee": "fees",
    "Application Fee": "fees",
    "Lab Fee": "fees",
    "Fee": "fees",
    "Misc": "other",
    "Miscellaneous": "other",
}


class ValueProblem(ValueError):
    """A single value could not be read; `message` is user-facing, `field_hint` names the field kind."""

    def __init__(self, field_hint: str, message: str) -> None:
        super().__init__(message)
        self.field_hint = field_hint
        self.message = message


# ---------------------------------------------------------------- currency


def parse_currency(text: str) -> str:
    """Validate an ISO 4217 code; lowercase and surrounding spaces are accepted."""
    code = text.strip().upper()
    if not code:
        raise ValueProblem("currency", "currency is empty")
    if code not in CURRENCY_EXPONENTS:
        raise ValueProblem(
            "currency",
            f"unknown currency code '{text.strip()}': expected an ISO 4217 code such as USD or EUR",
        )
    return code


# ---------------------------------------------------------------- amount

_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2007": " ", "\u2212": "-"})
_CODE_START = re.compile(r"^([A-Za-z]{3})(?![A-Za-z])")
_CODE_END = re.compile(r"(?<![A-Za-z])([A-Za-z]{3})$")
_NUMBER_CHARS = re.compile(r"^[0-9.,' ]+$")


def _split_amount(text: str) -> tuple[str, int, str | None]:
    """Peel currency markers and sign markers off both ends of an amount.

    Returns (number text, sign, currency). Raises ValueProblem for conflicting markers.
    """
    original = text.strip()
    s = original.translate(_SPACES).strip()
    if not s:
        raise ValueProblem("amount", "amount is empty")
    currencies: list[str] = []
    minus = plus = parens = 0
    changed = True
    while changed and s:
        changed = False
        for symbol in sorted(CURRENCY_SYMBOLS, key=len, reverse=True):
            if s.startswith(symbol):
                currencies.append(CURRENCY_SYMBOLS[symbol])
                s, changed = s[len(symbol) :].strip(), True
            if s.endswith(symbol):
                currencies.append(CURRENCY_SYMBOLS[symbol])
                s, changed = s[: -len(symbol)].strip(), True
        for pattern, at_start in ((_CODE_START, True), (_CODE_END, False)):
            match = pattern.search(s)
            if match:
                code = match.group(1).upper()
                if code not in CURRENCY_EXPONENTS:
                    raise ValueProblem(
                        "amount",
                        f"amount '{original}' contains '{match.group(1)}', which is not a currency code",
                    )
                currencies.append(code)
                s = (s[match.end() :] if at_start else s[: match.start()]).strip()
                changed = True
        if s.startswith("(") and s.endswith(")"):
            parens += 1
            s, changed = s[1:-1].strip(), True
        if s.startswith("-"):
            minus += 1
            s, changed = s[1:].strip(), True
        if s.endswith("-"):
            minus += 1
            s, changed = s[:-1].strip(), True
        if s.startswith("+"):
            plus += 1
            s, changed = s[1:].strip(), True
    if len(set(currencies)) > 1:
        raise ValueProblem(
            "amount",
            f"amount '{original}' names different currencies ({', '.join(dict.fromkeys(currencies))})",
        )
    if parens and minus:
        raise ValueProblem("amount", f"amount '{original}' has both parentheses and a minus sign; use one")
    if parens > 1 or minus > 1 or plus > 1 or (plus and (minus or parens)):
        raise ValueProblem("amount", f"amount '{original}' has conflicting or repeated signs")
    if not s:
        raise ValueProblem("amount", f"amount '{original}' has no digits")
    if "(" in s or ")" in s:
        raise ValueProblem("amount", f"amount '{original}' has unbalanced parentheses")
    if not _NUMBER_CHARS.match(s):
        if re.search(r"[A-Za-z]", s):
            raise ValueProblem("amount", f"amount '{original}' contains letters")
        bad = next(ch for ch in s if not (ch.isdigit() or ch in ".,' "))
        raise ValueProblem("amount", f"amount '{original}' contains the unexpected character '{bad}'")
    if not any(ch.isdigit() for ch in s):
        raise ValueProblem("amount", f"amount '{original}' has no digits")
    sign = -1 if (minus or parens) else 1
    return s, sign, (currencies[0] if currencies else None)


def amount_currency(text: str) -> str | None:
    """The currency named inside an amount ('$12', '12 EUR'), or None; raises on conflicting markers."""
    return _split_amount(text)[2]


def parse_amount(
    text: str, *, decimal_separator: str = ".", currency_exponent: int = 2
) -> tuple[int, str | None]:
    """Read an amount as written by a person into (minor units, currency found in the text or None).

    Thousands grouping must be regular (groups of three); more decimals than the currency allows
    is an error, never rounded. A separator that is not the profile's decimal separator but could
    be one ('1,23' with '.') is reported as ambiguous.
    """
    if decimal_separator not in (".", ","):
        raise ValueError(f"decimal_separator must be '.' or ',', not {decimal_separator!r}")
    original = text.strip()
    number, sign, currency = _split_amount(text)
    other_mark = "," if decimal_separator == "." else "."

    if number.count(decimal_separator) > 1:
        raise ValueProblem(
            "amount",
            f"amount '{original}' has more than one '{decimal_separator}', "
            "which is this profile's decimal separator",
        )
    whole, separator_found, fraction_text = number.partition(decimal_separator)
    if fraction_text and not fraction_text.isdigit():
        raise ValueProblem(
            "amount", f"amount '{original}' has a misplaced separator or space after the decimal separator"
        )
    if whole.endswith(" "):
        raise ValueProblem("amount", f"amount '{original}' has a space before the decimal separator")

    digits = _ungroup(whole, original, decimal_separator, other_mark, has_fraction=bool(separator_found))
    if not digits and not fraction_text:
        raise ValueProblem("amount", f"amount '{original}' has no digits")

    if len(fraction_text) > currency_exponent:
        extra = fraction_text[currency_exponent:]
        # Extra zeros lose nothing ('12.500'), except that exactly three digits after the mark could
        # be a thousands group written the other way round ('1.000'), so that case stays an error.
        if set(extra) != {"0"} or len(fraction_text) == 3:
            places = "no decimals" if currency_exponent == 0 else f"{currency_exponent} decimal places"
            raise ValueProblem(
                "amount",
                f"amount '{original}' has {len(fraction_text)} decimal places "
                f"but the currency allows {places}",
            )
        fraction_text = fraction_text[:currency_exponent]
    minor = int((digits or "0") + fraction_text.ljust(currency_exponent, "0"))
    if minor > MAX_MINOR_UNITS:
        raise ValueProblem("amount", f"amount '{original}' is too large")
    return sign * minor if minor else 0, currency


def _ungroup(
    whole: str, original: str, decimal_separator: str, other_mark: str, *, has_fraction: bool
) -> str:
    """Remove thousands separators from the integer part, insisting on regular groups of three."""
    if whole.isdigit() or not whole:
        return whole
    separators = {ch for ch in whole if not ch.isdigit()}
    if len(separators) > 1:
        raise ValueProblem("amount", f"amount '{original}' mixes different thousands separators")
    (separator,) = separators
    groups = whole.split(separator)
    regular = (
        1 <= len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:]) and all(g.isdigit() for g in groups)
    )
    if regular:
        return "".join(groups)
    if (
        separator == other_mark
        and len(groups) == 2
        and not has_fraction
        and groups[0]
        and groups[1].isdigit()
    ):
        raise ValueProblem(
            "amount",
            f"amount '{original}' is ambiguous: '{other_mark}' is not this profile's decimal separator "
            f"('{decimal_separator}')",
        )
    raise ValueProblem("amount", f"amount '{original}' has a misplaced thousands separator '{separator}'")


# ---------------------------------------------------------------- amounts in minor units

_WHOLE_DIGITS = re.compile(r"[0-9]+")
_MINOR_UNIT_NAMES = {
    0: "this currency has no smaller unit, so whole units",
    2: "hundredths, such as cents",
    3: "thousandths",
    4: "ten-thousandths",
}


def minor_unit_name(currency_exponent: int) -> str:
    """What one minor unit is, for messages: 'hundredths, such as cents' for a 2-decimal currency."""
    return _MINOR_UNIT_NAMES.get(currency_exponent, f"1/{10**currency_exponent} of the currency")


def parse_minor_amount(text: str, *, currency_exponent: int = 2) -> tuple[int, str | None]:
    """Read an amount written in whole minor units of its currency (125050 = USD 1250.50) into
    (minor units, currency found in the text or None).

    Signs and currency markers are read as parse_amount() reads them; the number itself must be
    plain digits. A separator ('1250.5', '12,50', '125,050') is refused, never guessed at: the
    sender may have sent major units by mistake.
    """
    original = text.strip()
    number, sign, currency = _split_amount(text)
    if not _WHOLE_DIGITS.fullmatch(number):
        example = 125050
        message = (
            f"amount '{original}' is not a whole number of minor units: this profile reads amounts "
            f"in minor units ({minor_unit_name(currency_exponent)})"
        )
        if currency_exponent:
            message += f", so {Decimal(example).scaleb(-currency_exponent)} is written {example}"
        raise ValueProblem("amount", message + "; write digits only, with no separators")
    minor = int(number)
    if minor > MAX_MINOR_UNITS:
        raise ValueProblem("amount", f"amount '{original}' is too large")
    return sign * minor if minor else 0, currency


_PLAIN_MINOR_AMOUNT = re.compile(r"-?[0-9]+")


def plain_minor_amount(text: str) -> int | None:
    """Minor units of a plain whole amount ('125050', '-4500'), else None (ask parse_minor_amount()).

    Wherever it answers, parse_minor_amount() answers the same with no currency.
    """
    if _PLAIN_MINOR_AMOUNT.fullmatch(text) is None:
        return None
    minor = int(text)
    if abs(minor) > MAX_MINOR_UNITS:
        return None
    return minor


# ---------------------------------------------------------------- expense type


def _type_key(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", text.casefold().replace("&", "and"))


_BUILTIN_TYPE_INDEX = {_type_key(k): v for k, v in BUILTIN_EXPENSE_TYPE_SYNONYMS.items()} | {
    _type_key(t): t for t in EXPENSE_TYPES
}


def parse_expense_type(text: str, synonyms: Mapping[str, str] = {}) -> str:  # noqa: B006 - read-only default
    """Map a partner's wording to tuition | materials | tutoring | fees | other.

    The profile's synonyms take precedence over the built-in ones; matching ignores case,
    spacing and punctuation ('&' counts as 'and').
    """
    key = _type_key(text)
    if not key:
        raise ValueProblem("expense_type", "expense type is empty")
    for source, target in synonyms.items():
        if _type_key(source) == key:
            if target not in EXPENSE_TYPES:
                raise ValueProblem("expense_type", f"the profile maps '{source}' to unknown type '{target}'")
            return target
    if key in _BUILTIN_TYPE_INDEX:
        return _BUILTIN_TYPE_INDEX[key]
    raise ValueProblem(
        "expense_type",
        f"unknown expense type '{text.strip()}'; accepted: {', '.join(EXPENSE_TYPES)} "
        "(or a synonym added to the mapping profile)",
    )


# ---------------------------------------------------------------- fast path for plain amounts

# Digits with regular thousands groups and an optional fraction: the shape of nearly every amount
# in a real file. ASCII digits only ('\d' would also accept other scripts' digits).
_PLAIN_AMOUNT = {
    ".": re.compile(r"(-?)([0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.([0-9]+))?"),
    ",": re.compile(r"(-?)([0-9]{1,3}(?:\.[0-9]{3})+|[0-9]+)(?:,([0-9]+))?"),
}


def plain_amount(text: str, *, decimal_separator: str = ".", currency_exponent: int = 2) -> int | None:
    """Minor units of a plain amount ('1234.50', '1,234.50', '-45', '(45.00)'), else None.

    A shortcut for the common case only: wherever it answers, parse_amount() answers the same
    (minor units, no currency); None means "not this simple shape, ask parse_amount()", which then
    reads the value or explains what is wrong with it.
    """
    pattern = _PLAIN_AMOUNT.get(decimal_separator)
    if pattern is None:
        return None
    negative = False
    if text.startswith("(") and text.endswith(")"):
        text, negative = text[1:-1], True
    match = pattern.fullmatch(text)
    if match is None:
        return None
    minus, whole, fraction = match.groups()
    if minus:
        if negative:
            return None  # parentheses and a minus sign: an error, let parse_amount() say so
        negative = True
    if fraction is None:
        fraction = ""
    elif len(fraction) > currency_exponent:
        return None
    if len(whole) > 3:  # the pattern allows only digits and the thousands mark here
        whole = whole.replace("," if decimal_separator == "." else ".", "")
    minor = int(whole + fraction.ljust(currency_exponent, "0"))
    if minor > MAX_MINOR_UNITS:
        return None
    return -minor if negative and minor else minor
