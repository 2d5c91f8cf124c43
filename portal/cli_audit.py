"""`flask audit verify`: walk the audit hash chain and say whether it is intact.

Exit status 0 when every event links to the one before and matches its hash, 1 at the first break.
"""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup

audit_cli = AppGroup("audit", help="Audit trail commands.")


@audit_cli.command("verify")
@click.option("--batch", default=5000, show_default=True, help="Events read per query.")
def verify(batch: int) -> None:
    """Recompute every event's hash in chain order; print 'ok N events' or the first break."""
    from portal.audit import remember_verification, verify_chain

    ok, count, bad = verify_chain(batch=batch)
    remember_verification(ok, count, bad)
    if ok:
        click.echo(f"ok {count} events")
        return
    click.echo(f"chain broken at event seq {bad['seq']} (id {bad['id']}): {bad['reason']}")
    sys.exit(1)


def init_app(app: Flask) -> None:
    app.cli.add_command(audit_cli)
