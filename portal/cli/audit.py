"""`flask audit verify` and `flask audit anchor`: check the audit hash chain; publish its signed head.

`verify` exits 0 when every event links to the one before, matches its hash, and the events the
last anchor (or a published one, `--anchor`) vouched for are all still there; 1 at the first break.
"""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from portal.core.audit_chain import AnchorLine, latest_anchor, remember_verification, verify_chain
from portal.extensions import db

audit_cli = AppGroup("audit", help="Audit trail commands.")


@audit_cli.command("verify")
@click.option("--batch", default=5000, show_default=True, help="Events read per query.")
@click.option(
    "--anchor",
    "anchor_line",
    default=None,
    help="A line printed earlier by 'audit anchor --print', kept outside the database: the chain "
    "must still hold the events it vouched for.",
)
def verify(batch: int, anchor_line: str | None) -> None:
    """Recompute every event's hash in chain order; print 'ok N events' or the first break.

    An intact chain is anchored: its head is stored, signed with SECRET_KEY, for the next run.
    """
    published = None
    if anchor_line:
        try:
            published = AnchorLine.parse(anchor_line)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--anchor") from exc
    ok, count, bad = verify_chain(batch=batch, published=published)
    remember_verification(ok, count, bad)
    db.session.commit()
    if ok:
        click.echo(f"ok {count} events")
        return
    click.echo(f"chain broken at event seq {bad['seq']} (id {bad['id']}): {bad['reason']}")
    sys.exit(1)


@audit_cli.command("anchor")
@click.option("--print", "as_line", is_flag=True, help="Print the anchor as one line to keep elsewhere.")
@click.option(
    "--resign",
    is_flag=True,
    help="After SECRET_KEY was rotated: verify the chain against the newest stored anchor without "
    "checking its signature and, if intact, anchor it again with the current key.",
)
def anchor(as_line: bool, resign: bool) -> None:
    """Show the latest signed anchor (the chain head the last good verification vouched for).

    With --print, as one line to store outside the database (a ticket, a log service, paper);
    `audit verify --anchor "<line>"` later checks the chain still holds what it vouched for.
    """
    if resign:
        ok, count, bad = verify_chain(unsigned=True)
        remember_verification(ok, count, bad)
        db.session.commit()
        if not ok:
            click.echo(f"chain broken at event seq {bad['seq']} (id {bad['id']}): {bad['reason']}")
            sys.exit(1)
    found, forged = latest_anchor()
    if forged is not None:
        click.echo(
            f"warning: anchor of {forged.verified_at:%Y-%m-%d %H:%M:%S} UTC has an invalid signature",
            err=True,
        )
    if found is None:
        click.echo("no anchor yet: run 'flask audit verify' first", err=True)
        sys.exit(1)
    if as_line:
        click.echo(found.line())
        return
    click.echo(
        f"event seq {found.head_seq} (id {found.head_event_id}), {found.event_count} events, "
        f"verified {found.verified_at:%Y-%m-%d %H:%M:%S} UTC, hash {found.head_hash}"
    )
