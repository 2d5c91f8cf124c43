"""`flask sqs consume`: the queue intake as its own process; partner files announced on SQS are
fetched from S3 and received as uploads (portal.ingest.queue_intake) until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
import signal
import threading

import click
from flask import current_app
from flask.cli import AppGroup

from portal.ingest.queue_intake import Handled, consume, intake_from_config

sqs_cli = AppGroup("sqs", help="Queue intake: partner files announced on SQS, fetched from S3.")


@sqs_cli.command("consume")
@click.option("--queue", "queue_url", help="Queue URL (default: SQS_QUEUE_URL).")
@click.option("--once", is_flag=True, help="Receive once (up to 10 messages), handle them and exit.")
@click.option(
    "--wait-seconds",
    type=click.IntRange(0, 20),
    default=None,
    help="Long-poll wait of each receive, 0-20 (default: SQS_WAIT_SECONDS).",
)
def sqs_consume(queue_url, once, wait_seconds):
    """Receive partner files from the queue until stopped; each message is deleted once its upload
    is recorded. SIGTERM or Ctrl-C stops after the message in hand."""
    config = current_app.config
    try:
        intake = intake_from_config(config, queue_url)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    wait = config["SQS_WAIT_SECONDS"] if wait_seconds is None else wait_seconds
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():  # signals reach the main thread only

        def request_stop(signum, frame):
            click.echo(f"{signal.Signals(signum).name}: stopping after the current message", err=True)
            stop.set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, request_stop)

    def report(handled: Handled) -> None:
        uploads = ", ".join(f"#{i}" for i in handled.upload_ids)
        click.echo(
            f"{handled.message_id}: {handled.outcome}"
            + (f" (upload {uploads})" if uploads else "")
            + (f": {handled.reason}" if handled.reason else "")
        )

    click.echo(f"Consuming {intake.queue_url}" + (" once" if once else " until stopped"), err=True)
    try:
        tally = consume(intake, wait_seconds=wait, once=once, should_stop=stop.is_set, on_handled=report)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(tally.items())) or "no messages"
    click.echo(f"Done: {summary}.")
