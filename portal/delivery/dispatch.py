"""Delivering approved invoices: one Delivery per channel, one job per attempt, retries with back-off.

The invoice becomes delivered when every configured channel has succeeded, a disabled one included;
admins can request a redelivery. Every attempt is a `DeliveryAttempt` row and an audit event.
"""

from __future__ import annotations

import random
from typing import NamedTuple

from rq import get_current_job
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from portal import jobs
from portal.core import audit
from portal.delivery.channels import KINDS, AttemptResult, attempt, channel_for
from portal.extensions import db
from portal.invoicing.lifecycle import InvoiceStateError, lock, mark_delivered
from portal.models import (
    ChannelKind,
    Customer,
    Delivery,
    DeliveryAttempt,
    DeliveryChannel,
    DeliveryStatus,
    Invoice,
    InvoiceDocument,
    InvoiceStatus,
    JobRecord,
    User,
)
from portal.models.base import utcnow

# Exponential back-off with jitter: 1 min doubling up to a day, 15 attempts in all. Nominally the
# retries span ~106 h; with the ±20 % jitter, between ~85 h and ~127 h, so always over 72 h.
RETRY_BASE_SECONDS = 60
RETRY_CAP_SECONDS = 24 * 3600
RETRY_JITTER = 0.2
MAX_ATTEMPTS = 15
MIN_RETRY_SPAN_SECONDS = 72 * 3600

DELIVERABLE = (InvoiceStatus.APPROVED, InvoiceStatus.DELIVERED)


class DeliveryError(ValueError):
    """A delivery request that cannot be carried out (wrong invoice status, missing documents)."""


class DeliveryRetry(Exception):
    """Raised by the attempt job after a retryable failure, so that RQ's Retry runs it again later."""


class DeliveryRow(NamedTuple):
    delivery: Delivery
    channel: DeliveryChannel
    attempts: list[DeliveryAttempt]


def retry_schedule(rng: random.Random | None = None) -> list[int]:
    """Seconds to wait before each retry (MAX_ATTEMPTS - 1 of them), each jittered by ±20 %.

    Jitter spreads the retries of many deliveries that failed together (a receiver's outage), so
    they do not all arrive at the same second when it comes back.
    """
    rng = rng or random.Random()
    intervals = []
    for n in range(MAX_ATTEMPTS - 1):
        nominal = min(RETRY_BASE_SECONDS * 2**n, RETRY_CAP_SECONDS)
        intervals.append(round(nominal * rng.uniform(1 - RETRY_JITTER, 1 + RETRY_JITTER)))
    return intervals


def _documents(invoice: Invoice) -> list[InvoiceDocument]:
    return list(db.session.scalars(select(InvoiceDocument).where(InvoiceDocument.invoice_id == invoice.id)))


def _missing_documents(documents: list[InvoiceDocument]) -> list[str]:
    present = {d.kind for d in documents}
    return [kind for kind in KINDS if kind not in present]


def _enqueue_attempt(delivery: Delivery, invoice: Invoice, channel: DeliveryChannel) -> None:
    jobs.enqueue(
        attempt_delivery,
        delivery.id,
        queue="delivery",
        max_attempts=MAX_ATTEMPTS,
        retry_intervals=retry_schedule(),
        description=f"Deliver {invoice.number} by {channel.kind.value} (delivery {delivery.id})",
    )


def _ensure_archive_channel(customer_id: int) -> None:
    """Every customer gets an archive channel once, so every approved invoice is archived.

    Only when the customer has no archive channel at all: one an admin disabled stays disabled.
    """
    exists = db.session.scalar(
        select(DeliveryChannel.id).where(
            DeliveryChannel.customer_id == customer_id, DeliveryChannel.kind == ChannelKind.ARCHIVE
        )
    )
    if exists:
        return
    channel = DeliveryChannel(customer_id=customer_id, kind=ChannelKind.ARCHIVE, target="", enabled=True)
    db.session.add(channel)
    db.session.flush()
    audit.record(
        "delivery_channel.created",
        subject=channel,
        details={"kind": "archive", "reason": "every approved invoice is archived"},
    )


def _ensure_deliveries(invoice: Invoice) -> list[Delivery]:
    """Create the missing Delivery of each enabled channel and enqueue its first attempt."""
    # Locking the customer makes two invoices of one customer, delivered at the same moment,
    # create one archive channel between them (there is no unique key on customer and kind).
    db.session.execute(select(Customer.id).where(Customer.id == invoice.customer_id).with_for_update())
    _ensure_archive_channel(invoice.customer_id)
    channels = db.session.scalars(
        select(DeliveryChannel)
        .where(DeliveryChannel.customer_id == invoice.customer_id, DeliveryChannel.enabled.is_(True))
        .order_by(DeliveryChannel.id)
    ).all()
    existing = set(db.session.scalars(select(Delivery.channel_id).where(Delivery.invoice_id == invoice.id)))
    created = []
    for channel in channels:
        if channel.id in existing:
            continue
        try:
            with db.session.begin_nested():
                delivery = Delivery(
                    invoice_id=invoice.id,
                    customer_id=invoice.customer_id,
                    channel_id=channel.id,
                    status=DeliveryStatus.PENDING,
                    attempts=0,
                )
                db.session.add(delivery)
        except IntegrityError:  # a concurrent run created it (and enqueued its attempt)
            continue
        created.append((delivery, channel))
    # Enqueued only after the last savepoint: the job layer's after_commit/after_rollback hooks
    # also fire for savepoints (SQLAlchemy 2.0), which would push or drop jobs recorded before one.
    for delivery, channel in created:
        _enqueue_attempt(delivery, invoice, channel)
    return [delivery for delivery, _ in created]


def deliver_invoice(invoice_id: int) -> dict:
    """The job run once an approved invoice's PDF and CSV are stored: start one delivery per channel.

    Idempotent: a delivery that exists already is left to its own job.
    """
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None:
        return {"invoice_id": invoice_id, "skipped": "no such invoice"}
    if invoice.status != InvoiceStatus.APPROVED:
        return {"invoice": invoice.number, "skipped": f"invoice is {invoice.status.value}"}
    missing = _missing_documents(_documents(invoice))
    if missing:
        return {"invoice": invoice.number, "skipped": f"documents missing: {', '.join(missing)}"}
    created = _ensure_deliveries(invoice)
    db.session.commit()
    return {"invoice": invoice.number, "deliveries": [d.id for d in created]}


def _last_job_attempt() -> bool:
    """True when the running job will not be retried (its record has used every attempt)."""
    job = get_current_job()
    if job is None:
        return False
    record = db.session.get(JobRecord, job.id)
    return record is not None and record.attempts >= record.max_attempts


def _mark_delivered_if_complete(invoice: Invoice) -> bool:
    """Mark the invoice delivered if every delivery of it has succeeded (or was waived by an admin)
    and at least one succeeded.

    A channel disabled since (by a 410 or an admin) still counts: the invoice never reached it, so it
    stays approved until an admin re-enables the channel and redelivers, or waives that delivery.
    This runs where a delivery succeeds and where one is waived.
    """
    # Deliveries finishing at the same moment each lock the invoice before looking at the others,
    # so the last one to commit sees every other success and none of them misses the transition.
    lock(invoice)
    statuses = list(db.session.scalars(select(Delivery.status).where(Delivery.invoice_id == invoice.id)))
    done = (DeliveryStatus.SUCCEEDED, DeliveryStatus.WAIVED)
    if DeliveryStatus.SUCCEEDED not in statuses or any(s not in done for s in statuses):
        return False
    if invoice.status != InvoiceStatus.APPROVED:
        return False
    try:
        mark_delivered(invoice, by=None)
    except InvoiceStateError:  # delivered (or voided) by someone else meanwhile
        return False
    return True


def _precheck(delivery: Delivery, invoice: Invoice, documents: list[InvoiceDocument]) -> AttemptResult | None:
    if invoice.status not in DELIVERABLE:
        return AttemptResult(False, error=f"invoice is {invoice.status.value}; not delivered", permanent=True)
    if not delivery.channel.enabled:
        reason = delivery.channel.disabled_reason or "no reason given"
        return AttemptResult(False, error=f"channel is disabled ({reason})", permanent=True)
    missing = _missing_documents(documents)
    if missing:
        return AttemptResult(False, error=f"documents missing: {', '.join(missing)}", permanent=True)
    return None


def attempt_delivery(delivery_id: int) -> dict:
    """The job: one attempt of one delivery, recorded; raises DeliveryRetry when it should run again.

    The outcome is committed before raising, because the job runner rolls back on an exception.
    """
    delivery = db.session.scalar(
        select(Delivery)
        .where(Delivery.id == delivery_id)
        .with_for_update()  # two copies of this job (a redelivery, a sweep) never send at once
        .execution_options(populate_existing=True)
    )
    if delivery is None:
        return {"delivery": delivery_id, "skipped": "no such delivery"}
    if delivery.status != DeliveryStatus.PENDING:
        return {"delivery": delivery_id, "skipped": f"delivery is {delivery.status.value}"}
    invoice, channel = delivery.invoice, delivery.channel
    documents = _documents(invoice)
    refusal = _precheck(delivery, invoice, documents)
    if refusal is not None:
        result, duration_ms = refusal, 0
    else:
        result, duration_ms = attempt(channel_for(delivery), invoice, documents)

    now = utcnow()
    delivery.attempts = (delivery.attempts or 0) + 1
    delivery.last_attempt_at = now
    db.session.add(
        DeliveryAttempt(
            delivery_id=delivery.id,
            attempted_at=now,
            ok=result.ok,
            status_code=result.status_code,
            error=result.error,
            duration_ms=duration_ms,
        )
    )
    summary = {
        "delivery": delivery.id,
        "invoice": invoice.number,
        "channel": channel.kind.value,
        "attempt": delivery.attempts,
        "ok": result.ok,
        "status_code": result.status_code,
    }
    audit.record("delivery.attempted", subject=delivery, details={**summary, "error": result.error})

    if result.ok:
        delivery.status = DeliveryStatus.SUCCEEDED
        delivery.succeeded_at = now
        delivery.last_error = None
        audit.record("delivery.succeeded", subject=delivery, details=summary)
        delivered = _mark_delivered_if_complete(invoice)
        db.session.commit()
        return {**summary, "status": "succeeded", "invoice_delivered": delivered}

    delivery.last_error = result.error
    if result.disable_channel:
        channel.enabled = False
        channel.disabled_reason = result.error
        audit.record(
            "delivery_channel.disabled",
            subject=channel,
            details={"channel_id": channel.id, "reason": result.error, "delivery": delivery.id},
        )
    if result.permanent or delivery.attempts >= MAX_ATTEMPTS or _last_job_attempt():
        delivery.status = DeliveryStatus.FAILED
        audit.record("delivery.failed", subject=delivery, details={**summary, "error": result.error})
        db.session.commit()  # the invoice stays approved: this channel was not reached
        return {**summary, "status": "failed", "error": result.error, "invoice_delivered": False}
    db.session.commit()
    raise DeliveryRetry(
        f"delivery {delivery.id} ({channel.kind.value}) attempt {delivery.attempts} failed: {result.error}"
    )


def redeliver(invoice: Invoice, *, by: User | None, include_succeeded: bool = False) -> dict:
    """An admin's redelivery: failed deliveries (and succeeded ones if asked) are attempted again.

    While the invoice is still approved, channels added since get their delivery too. Deliveries of a
    disabled channel are skipped, and keep the invoice approved until the channel is enabled again and
    redelivered. The attempt counter restarts (the attempt rows stay); the caller commits, which hands
    the attempts to the queue.
    """
    if invoice.status not in DELIVERABLE:
        raise DeliveryError(
            f"Invoice {invoice.number} is {invoice.status.label.lower()}; it cannot be delivered."
        )
    missing = _missing_documents(_documents(invoice))
    if missing:
        raise DeliveryError(f"Invoice {invoice.number} has no {' or '.join(missing)} file yet.")
    # First, as it uses savepoints (see _ensure_deliveries); the requeued attempts are recorded after.
    created = [d.id for d in _ensure_deliveries(invoice)] if invoice.status == InvoiceStatus.APPROVED else []
    wanted = [DeliveryStatus.FAILED] + ([DeliveryStatus.SUCCEEDED] if include_succeeded else [])
    deliveries = db.session.scalars(
        select(Delivery)
        .where(Delivery.invoice_id == invoice.id, Delivery.status.in_(wanted))
        .order_by(Delivery.id)
        .with_for_update()
    ).all()
    requeued, skipped = [], []
    for delivery in deliveries:
        if not delivery.channel.enabled:
            skipped.append(delivery.id)
            continue
        delivery.status = DeliveryStatus.PENDING
        delivery.attempts = 0
        delivery.last_error = None
        delivery.succeeded_at = None
        _enqueue_attempt(delivery, invoice, delivery.channel)
        requeued.append(delivery.id)
    details = {"number": invoice.number, "requeued": requeued, "created": created, "skipped": skipped}
    audit.record("delivery.redelivery_requested", subject=invoice, actor=by, details=details)
    return details


def waive(delivery: Delivery, *, by: User | None, reason: str) -> bool:
    """An admin's decision that a failed delivery need not succeed (say, the customer retired that
    webhook); the reason is required and kept. Returns whether the invoice is now delivered.

    The caller commits. Only a failed delivery can be waived, and a later redelivery of a waived one
    is not made: its channel can be given a new delivery by re-enabling it and redelivering.
    """
    reason = (reason or "").strip()
    if not reason:
        raise DeliveryError("Say why this delivery need not succeed: a reason is required.")
    if len(reason) > 500:
        raise DeliveryError("The reason can be at most 500 characters.")
    waived = db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery.id, Delivery.status == DeliveryStatus.FAILED)
        .values(status=DeliveryStatus.WAIVED, waived_reason=reason)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not waived:
        db.session.refresh(delivery)
        raise DeliveryError(f"Only a failed delivery can be waived; this one has {delivery.status.value}.")
    db.session.refresh(delivery)
    invoice = db.session.get(Invoice, delivery.invoice_id)
    audit.record(
        "delivery.waived",
        subject=delivery,
        actor=by,
        details={"invoice": invoice.number, "channel": delivery.channel.kind.value, "reason": reason},
    )
    return _mark_delivered_if_complete(invoice)


def delivery_summary(invoice: Invoice) -> list[DeliveryRow]:
    """Each delivery of the invoice with its channel and every attempt (newest first), for pages.

    The attempts are the recorded rows, so those made before a redelivery (which restarts the
    counter) are listed too. Three queries whatever the number of deliveries.
    """
    deliveries = db.session.scalars(
        select(Delivery)
        .where(Delivery.invoice_id == invoice.id)
        .options(selectinload(Delivery.channel))
        .order_by(Delivery.id)
    ).all()
    attempts: dict[int, list[DeliveryAttempt]] = {d.id: [] for d in deliveries}
    if deliveries:
        for row in db.session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_(attempts))
            .order_by(DeliveryAttempt.attempted_at.desc(), DeliveryAttempt.id.desc())
        ):
            attempts[row.delivery_id].append(row)
    return [DeliveryRow(d, d.channel, attempts[d.id]) for d in deliveries]
