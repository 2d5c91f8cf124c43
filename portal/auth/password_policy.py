"""Which new passwords are refused, and why: too short, common, or guessable from the account (NIST 800-63B).

The common list is the 30,000 most frequent passwords of breach corpora that the `zxcvbn` package
ships (its `passwords` frequency list); no network call is made.
"""

from __future__ import annotations

import functools
import re

MIN_LENGTH = 12

COMMON = (
    "This password is on a list of common passwords that attackers try first. "
    "Choose another; a few unrelated words work well."
)
COMMON_PLUS = (
    "This password is a common password with digits or symbols added, which attackers try first. "
    "Choose another; a few unrelated words work well."
)
REPEATED = "This password repeats a short pattern. Choose another; a few unrelated words work well."
OWN_NAME = "This password contains your email address. Choose another; a few unrelated words work well."


@functools.cache
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # ~30 k words: loaded on first use only

    return frozenset(p.lower() for p in FREQUENCY_LISTS["passwords"])


def password_problem(password: str, *, email: str = "") -> str | None:
    """The reason `password` is refused, in words for the person choosing it, or None if it is fine."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    common = _common_passwords()
    folded = password.lower()
    squeezed = re.sub(r"\s+", "", folded)
    if folded in common or squeezed in common:
        return COMMON
    # "password2024!" and "qwertyuiop123": a listed password with a number or symbols tacked on.
    stem = re.sub(r"[\d\W_]+$", "", squeezed)
    if stem != squeezed and len(stem) >= 4 and stem in common:
        return COMMON_PLUS
    if re.fullmatch(r"(.{1,4})\1+", squeezed):
        return REPEATED
    local = email.split("@", 1)[0].lower()
    if email and (email.lower() in folded or (len(local) >= 4 and local in squeezed)):
        return OWN_NAME
    return None
