"""Which customer a row is for: by our code, or by the customer's name as a partner writes it
("Contoso Limited"), and the per-partner aliases admins add ("Contoso Ltd." -> CONTOSO).

Names match ignoring case, accents, punctuation and spacing; a name two customers share is an
error naming both, never a guess.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import select

from portal.accounts.rules import ValidationError
from portal.core import audit
from portal.extensions import db
from portal.models import Customer, CustomerAlias, Partner, User


def name_key(text: str) -> str:
    """'  Contoso  Ltd. ' and 'CONTOSO LTD' -> 'contoso ltd'; 'Société Générale' -> 'societe generale'."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return " ".join(re.findall(r"[0-9a-z]+", plain))


@dataclass
class CustomerMatcher:
    """The customers one partner's rows may name, loaded once per upload."""

    by_code: dict[str, int]
    codes: dict[int, str]
    by_name: dict[str, list[int]]
    aliases: dict[str, int]

    @classmethod
    def load(cls, partner_id: int | None) -> CustomerMatcher:
        rows = db.session.execute(select(Customer.id, Customer.code, Customer.name)).all()
        by_name: dict[str, list[int]] = {}
        for customer_id, _, name in rows:
            by_name.setdefault(name_key(name), []).append(customer_id)
        aliases = {}
        if partner_id is not None:
            aliases = dict(
                db.session.execute(
                    select(CustomerAlias.alias_key, CustomerAlias.customer_id).where(
                        CustomerAlias.partner_id == partner_id
                    )
                ).all()
            )
        return cls(
            by_code={code: customer_id for customer_id, code, _ in rows},
            codes={customer_id: code for customer_id, code, _ in rows},
            by_name=by_name,
            aliases=aliases,
        )

    def match(self, text: str, *, by: str) -> tuple[int | None, str | None]:
        """(customer id, None) or (None, the reason), for the customer column's `text`.

        by="code": our code (any case), else an alias; by="name": the customer's name, else an alias.
        """
        if by == "code":
            found = self.by_code.get(text) or self.by_code.get(text.upper())
            if found is None:
                found = self.aliases.get(name_key(text))
            if found is None:
                return None, f"'{text}' is not a known customer code"
            return found, None
        key = name_key(text)
        alias = self.aliases.get(key)
        if alias is not None:  # an admin's alias settles a name customers share
            return alias, None
        candidates = self.by_name.get(key, [])
        if len(candidates) == 1:
            return candidates[0], None
        if candidates:
            codes = ", ".join(sorted(self.codes[c] for c in candidates))
            return None, (
                f"'{text}' is the name of several customers ({codes}); "
                "an admin can add it as an alias of the right one"
            )
        return None, f"'{text}' is not a known customer name; an admin can add it as an alias of a customer"


def add_alias(partner: Partner, customer: Customer, alias: str, *, by: User | None) -> CustomerAlias:
    """Let `partner`'s files name `customer` as `alias`; audited `customer.alias_added`.

    Raises ValidationError when the alias is empty or the partner already uses it for a customer.
    """
    alias = " ".join((alias or "").split())
    key = name_key(alias)
    if not key:
        raise ValidationError("alias", "an alias needs letters or digits")
    if len(alias) > 200:
        raise ValidationError("alias", "at most 200 characters")
    taken = db.session.scalar(
        select(CustomerAlias).where(CustomerAlias.partner_id == partner.id, CustomerAlias.alias_key == key)
    )
    if taken is not None:
        raise ValidationError(
            "alias", f"{partner.name} already uses '{taken.alias}' for customer {taken.customer.code}"
        )
    row = CustomerAlias(partner_id=partner.id, customer_id=customer.id, alias=alias, alias_key=key,
                        created_by_id=by.id if by else None)  # fmt: skip
    db.session.add(row)
    db.session.flush()
    audit.record(
        "customer.alias_added",
        subject=customer,
        actor=by,
        customer_id=customer.id,
        partner_id=partner.id,
        details={"alias": alias, "partner": partner.slug, "customer": customer.code},
    )
    return row
