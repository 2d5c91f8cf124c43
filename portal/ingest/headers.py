"""The portal's canonical fields and the header names partners give them: match one header, or
propose a whole mapping for a file's header row. Imports nothing from the parsers, which use it."""

from __future__ import annotations

import re
from collections.abc import Iterable

# field -> required?  customer_code, currency and the employee's key (id and/or email, by the
# profile's employee_key) have conditional rules, see mapping.missing_required().
CANONICAL_FIELDS: dict[str, bool] = {
    "employee_external_id": False,
    "employee_email": False,
    "employee_name": False,
    "customer_code": True,
    "partner_reference": True,
    "expense_type": True,
    "amount": True,
    "currency": False,
    "service_date": True,
    "description": False,
    "term": False,
}

# Most specific first: when two headers map to the same field, the earlier synonym wins.
HEADER_SYNONYMS: dict[str, tuple[str, ...]] = {
    "employee_external_id": (
        "Employee External ID", "Employee ID", "Employee #", "Employee Number", "Emp ID", "Emp #",
        "Student ID", "Student #", "Student Number", "Member ID", "Member #", "Participant ID",
        "External ID",
    ),
    "employee_email": (
        "Employee Email", "Work Email", "Learner Email", "Student Email", "Participant Email",
        "Member Email", "Email Address", "E-mail Address", "Email", "E-mail",
    ),
    "employee_name": (
        "Employee Name", "Student Name", "Member Name", "Participant Name", "Learner Name", "Full Name",
        "Learner", "Name",
    ),
    "customer_code": (
        "Customer Code", "Employer Code", "Company Code", "Customer ID", "Employer ID", "Employer",
        "Company", "Customer", "Sponsor",
    ),
    "partner_reference": (
        "Partner Reference", "Invoice Line", "Invoice Line ID", "Line ID", "Transaction ID", "Txn ID",
        "Transaction #", "Session ID", "Booking ID", "Reference Number", "Reference", "Ref", "Ref #",
    ),
    "expense_type": (
        "Expense Type", "Fee Type", "Item Type", "Charge Type", "Service Type", "Category", "Service", "Type",
    ),
    "amount": ("Amount Due", "Amount", "Charge Amount", "Charge", "Cost", "Total", "Price"),
    "currency": ("Currency Code", "Currency", "Curr", "CCY"),
    "service_date": (
        "Service Date", "Date of Service", "Transaction Date", "Txn Date", "Charge Date", "Date",
    ),
    "description": ("Description", "Course Name", "Course Title", "Course", "Item", "Details"),
    "term": ("Term", "Semester", "Session", "Academic Term"),
}  # fmt: skip

_NUMBER_WORDS = {"no", "nr", "nbr", "num", "number"}


def header_key(header: str) -> str:
    """Normalize a header for matching: case, spacing, punctuation; '#', 'No.' and 'Nr' mean 'number'."""
    text = header.casefold().replace("#", " number ").replace("&", " and ")
    tokens = ["number" if t in _NUMBER_WORDS else t for t in re.findall(r"[0-9a-z]+", text)]
    return "".join(tokens)


def _header_tokens(header: str) -> list[str]:
    text = header.casefold().replace("#", " number ").replace("&", " and ")
    return ["number" if t in _NUMBER_WORDS else t for t in re.findall(r"[0-9a-z]+", text)]


_SYNONYM_INDEX: dict[str, tuple[str, int]] = {}
for _field, _names in HEADER_SYNONYMS.items():
    for _rank, _name in enumerate(_names):
        _key = header_key(_name)
        if _key in _SYNONYM_INDEX and _SYNONYM_INDEX[_key][0] != _field:
            raise RuntimeError(f"header synonym {_name!r} is listed for two fields")
        _SYNONYM_INDEX.setdefault(_key, (_field, _rank))


def match_header(header: str) -> str | None:
    """The canonical field a header names exactly (after normalization), or None."""
    hit = _SYNONYM_INDEX.get(header_key(header))
    return hit[0] if hit else None


def propose_mapping(headers: Iterable[str]) -> dict[str, str]:
    """Suggest canonical field -> source header; each header used once, the most specific synonym wins.

    Exact (normalized) synonym matches come first; then headers that contain a synonym's words
    ('Tuition Amount (USD)') fill fields still unmapped, if they point at exactly one field.
    This is only a proposal: the uploader confirms it before it becomes a profile.
    """
    headers = list(headers)
    best: dict[str, tuple[int, int, str]] = {}  # field -> (rank, position, header)
    for position, header in enumerate(headers):
        hit = _SYNONYM_INDEX.get(header_key(header))
        if hit:
            fld, rank = hit
            if fld not in best or (rank, position) < best[fld][:2]:
                best[fld] = (rank, position, header)
    proposal = {fld: header for fld, (_, _, header) in best.items()}

    used = set(proposal.values())
    partial: dict[str, tuple[int, int, str]] = {}  # field -> (-words matched, position, header)
    for position, header in enumerate(headers):
        if header in used:
            continue
        tokens = _header_tokens(header)
        matches: dict[str, int] = {}
        for fld, names in HEADER_SYNONYMS.items():
            for name in names:
                words = _header_tokens(name)
                if words and _contains(tokens, words):
                    matches[fld] = max(matches.get(fld, 0), len(words))
        if not matches:
            continue
        top = max(matches.values())
        winners = [fld for fld, n in matches.items() if n == top]
        if len(winners) != 1 or winners[0] in proposal:
            continue
        fld = winners[0]
        if fld not in partial or (-top, position) < partial[fld][:2]:
            partial[fld] = (-top, position, header)
    for fld, (_, _, header) in partial.items():
        proposal[fld] = header
    return {fld: proposal[fld] for fld in CANONICAL_FIELDS if fld in proposal}


def _contains(tokens: list[str], words: list[str]) -> bool:
    n = len(words)
    return any(tokens[i : i + n] == words for i in range(len(tokens) - n + 1))


_MINOR_UNIT_WORDS = {"cent", "cents", "minor", "pence", "penny", "pennies"}


def propose_amount_unit(amount_header: str | None) -> str:
    """'minor' when the amount column's name says it counts cents ('amount_cents', 'Amount (minor
    units)'), else 'major'; only a proposal, shown in the mapping preview before it is saved."""
    camel_split = re.sub(r"([a-z])([A-Z])", r"\1 \2", amount_header or "")  # 'amountCents'
    words = set(_header_tokens(camel_split))
    return "minor" if words & _MINOR_UNIT_WORDS else "major"
