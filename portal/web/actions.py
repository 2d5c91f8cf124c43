"""Saving what a POST changed: commit it (with the audit events the domain function wrote), or
roll it back and tell the user why, in one place instead of a try/commit/rollback/flash per view."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask import flash

from portal.extensions import db


@dataclass
class Outcome:
    """What `saved` did: set `message` (and `category`) in the block to flash it once committed;
    `error` is the domain error that rolled the change back, or None."""

    message: str = ""
    category: str = "success"
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@contextmanager
def saved(*errors: type[Exception], flash_error: bool = True) -> Iterator[Outcome]:
    """Run the block, then commit and flash `outcome.message`.

    One of `errors` raised in the block (or by the commit): roll back, flash the error's message
    (unless `flash_error` is False, for views that show it next to a field) and carry on after the
    block with `outcome.error` set. Any other exception propagates, as before.

        with saved(lifecycle.InvoiceStateError) as outcome:
            lifecycle.approve(inv, by=current_user)
            outcome.message = f"You approved {inv.number}."
        return redirect(...)
    """
    outcome = Outcome()
    try:
        yield outcome
        db.session.commit()
    except errors as exc:
        db.session.rollback()
        outcome.error = exc
        if flash_error:
            flash(str(exc), "error")
        return
    if outcome.message:
        flash(outcome.message, outcome.category)
