"""Delivery channels behind one protocol: email with both files, signed webhook, storage archive.

Archive key layout: `archive/<customer code>/<YYYY>/<MM>/<invoice number>.pdf` and `.csv`, where
YYYY/MM is the invoice's billing period (its first day); a revision has its own number (…-R2).
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Protocol
from urllib.parse import unquote

import requests
from flask import current_app
from requests.adapters import HTTPAdapter
from sqlalchemy import select
from standardwebhooks import Webhook

from portal.core.mail import Attachment, MailError, render_mail, send_mail
from portal.core.money import to_decimal
from portal.core.storage import StorageError, get_storage
from portal.delivery.outbound import RefusedURL, Target, UnresolvableHost, check_url
from portal.delivery.webhook_secrets import signing_secrets
from portal.extensions import db
from portal.invoicing.notify import invoice_mail_context
from portal.models import ChannelKind, Delivery, DeliveryChannel, Invoice, InvoiceDocument, Role, User
from portal.models.base import utcnow

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT = 15  # seconds, for connecting and for each read
EVENT_TYPE = "invoice.approved"
MIMETYPES = {"pdf": "application/pdf", "csv": "text/csv"}
KINDS = ("pdf", "csv")
SPOOL_BYTES = 8 * 1024 * 1024  # an archive copy larger than this goes through a temporary file


@dataclass(frozen=True)
class AttemptResult:
    ok: bool
    status_code: int | None = None
    error: str | None = None
    permanent: bool = False  # retrying cannot help: give up now
    disable_channel: bool = False  # the receiver asked never to be called again (HTTP 410)


class Channel(Protocol):
    def deliver(self, invoice: Invoice, documents: Sequence[InvoiceDocument]) -> AttemptResult: ...


def _read(document: InvoiceDocument) -> bytes:
    stream = get_storage().open(document.storage_key)
    try:
        return stream.read()
    finally:
        stream.close()


def _by_kind(documents: Sequence[InvoiceDocument]) -> dict[str, InvoiceDocument]:
    return {d.kind: d for d in documents}


class EmailChannel:
    """Both files attached, to the channel's addresses or else the customer's active contacts."""

    def __init__(self, row: DeliveryChannel):
        self.row = row

    def recipients(self, invoice: Invoice) -> list[str]:
        listed = [a.strip() for a in (self.row.target or "").split(",") if a.strip()]
        if listed:
            return listed
        return list(
            db.session.scalars(
                select(User.email).where(
                    User.role == Role.CUSTOMER,
                    User.customer_id == invoice.customer_id,
                    User.active.is_(True),
                )
            )
        )

    def deliver(self, invoice: Invoice, documents: Sequence[InvoiceDocument]) -> AttemptResult:
        to = self.recipients(invoice)
        if not to:
            return AttemptResult(False, error="no recipients: no address on the channel and no contact")
        bad = [a for a in to if "@" not in parseaddr(a)[1]]
        if bad:
            return AttemptResult(False, error=f"not an email address: {', '.join(bad)}", permanent=True)
        docs = _by_kind(documents)
        attachments = [
            Attachment(f"{invoice.number}.{kind}", _read(docs[kind]), MIMETYPES[kind])
            for kind in KINDS
            if kind in docs
        ]
        subject = f"{invoice.kind_label} {invoice.number} for {invoice.period_label}"
        text, html = render_mail("invoice_delivered", **delivered_mail_context(invoice, attachments))
        try:
            send_mail(to, subject, text=text, html=html, attachments=attachments)
        except MailError as exc:
            return AttemptResult(False, error=str(exc))
        return AttemptResult(True)


def delivered_mail_context(invoice: Invoice, attachments: Sequence[Attachment]) -> dict:
    """What the delivery email shows: the invoice's facts, the files attached, and how to pay.

    A credit note is not paid, so it gets no payment instructions. REMIT_TO's `{number}` is
    replaced by plain substitution, not str.format, so another brace in it cannot break the mail.
    """
    credit = invoice.is_credit_note
    remit_to = current_app.config.get("REMIT_TO") or ""
    return {
        **invoice_mail_context(invoice),
        "credit": credit,
        "attachments": [a.filename for a in attachments],
        "remit_to": []
        if credit
        else [
            line.strip().replace("{number}", invoice.number) for line in remit_to.splitlines() if line.strip()
        ],
    }


class _PinnedAdapter(HTTPAdapter):
    """Connects to the address that was checked, while TLS still verifies the host's certificate.

    Letting the client resolve the name again would allow DNS rebinding: a public answer for the
    check, an internal one for the connection.
    """

    def __init__(self, hostname: str):
        self._hostname = hostname
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs):
        # Ignored for plain http pools (urllib3 drops TLS keywords there).
        kwargs["server_hostname"] = self._hostname
        kwargs["assert_hostname"] = self._hostname
        super().init_poolmanager(*args, **kwargs)


def webhook_payload(invoice: Invoice, documents: Sequence[InvoiceDocument]) -> dict:
    base = current_app.config["PORTAL_BASE_URL"].rstrip("/")
    # The event's own time (approval), not the attempt's: retries then send the same body.
    when = invoice.decided_at or utcnow()
    return {
        "type": EVENT_TYPE,
        "timestamp": when.isoformat(),
        "data": {
            "id": invoice.id,
            "number": invoice.number,
            "customer_code": invoice.customer.code,
            "period_start": invoice.period_start.isoformat(),
            "period_end": invoice.period_end.isoformat(),
            "currency": invoice.currency,
            "total": str(to_decimal(invoice.total_minor, invoice.currency)),
            "line_count": invoice.line_count,
            "documents": [
                {
                    "kind": d.kind,
                    "sha256": d.sha256,
                    "size_bytes": d.size_bytes,
                    "download_url": f"{base}/customer/invoices/{invoice.id}/documents/{d.kind}",
                }
                for d in sorted(documents, key=lambda d: d.kind)
            ],
        },
    }


class WebhookChannel:
    """A JSON POST signed per Standard Webhooks; 2xx succeeds, 410 disables, anything else retries."""

    def __init__(self, row: DeliveryChannel, *, message_id: str):
        self.row = row
        # The spec asks for one id per message across retries, so receivers can drop duplicates.
        self.message_id = message_id

    def deliver(self, invoice: Invoice, documents: Sequence[InvoiceDocument]) -> AttemptResult:
        if not self.row.secret:
            return AttemptResult(False, error="webhook channel has no signing secret", permanent=True)
        try:
            target = check_url(self.row.target, current_app.config.get("WEBHOOK_ALLOWLIST", ()))
        except RefusedURL as exc:
            return AttemptResult(False, error=f"refused: {exc}", permanent=True)
        except UnresolvableHost as exc:
            return AttemptResult(False, error=str(exc))
        body = json.dumps(webhook_payload(invoice, documents), separators=(",", ":"), sort_keys=True)
        sent_at = utcnow()
        headers = {
            "content-type": "application/json",
            "user-agent": "tuition-invoice-portal-webhooks",
            "webhook-id": self.message_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            # Space-separated signatures, one per secret (the old one too during a rotation's grace).
            "webhook-signature": " ".join(
                Webhook(secret).sign(self.message_id, sent_at, body)
                for secret in signing_secrets(self.row, now=sent_at)
            ),
        }
        return self._post(target, headers, body.encode())

    def _post(self, target: Target, headers: dict, body: bytes) -> AttemptResult:
        """POST to the checked addresses in turn until one accepts the connection."""
        parts = requests.utils.urlparse(self.row.target)
        auth = (unquote(parts.username), unquote(parts.password or "")) if parts.username else None
        with requests.Session() as session:
            session.trust_env = False  # an environment proxy would bypass the address check
            session.mount(f"{target.scheme}://", _PinnedAdapter(target.hostname))
            failures = []
            for address in target.addresses:
                try:
                    response = session.post(
                        target.pinned_url(address),
                        data=body,
                        headers={**headers, "host": target.host_header},
                        auth=auth,
                        timeout=WEBHOOK_TIMEOUT,
                        allow_redirects=False,  # a redirect could lead anywhere, past the check
                    )
                    break
                except requests.ConnectionError as exc:
                    # This address is down; as a browser would, try the host's next one. (The
                    # webhook-id lets the receiver drop a copy if the first one got through after all.)
                    failures.append(f"{address}: {type(exc).__name__}: {exc}")
                except requests.RequestException as exc:
                    return AttemptResult(False, error=f"{type(exc).__name__}: {exc}")
            else:
                return AttemptResult(False, error="; ".join(failures))
        status = response.status_code
        if 200 <= status < 300:
            return AttemptResult(True, status_code=status)
        if status == 410:
            return AttemptResult(
                False,
                status_code=status,
                error="HTTP 410 Gone: the receiver removed this endpoint",
                permanent=True,
                disable_channel=True,
            )
        return AttemptResult(False, status_code=status, error=f"HTTP {status}: {response.text[:200]}")


def archive_key(invoice: Invoice, kind: str) -> str:
    period = invoice.period_start
    return f"archive/{invoice.customer.code}/{period:%Y}/{period:%m}/{invoice.number}.{kind}"


class ArchiveChannel:
    """Copies both files to the archive keys, each only once its content matches the recorded sha256."""

    def __init__(self, row: DeliveryChannel):
        self.row = row

    def deliver(self, invoice: Invoice, documents: Sequence[InvoiceDocument]) -> AttemptResult:
        storage = get_storage()
        docs = _by_kind(documents)
        for kind in KINDS:
            key = archive_key(invoice, kind)
            # Hashed before anything is written, so a changed file never lands at the archive key.
            with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as copy:
                digest = hashlib.sha256()
                source = storage.open(docs[kind].storage_key)
                try:
                    while chunk := source.read(1 << 16):
                        digest.update(chunk)
                        copy.write(chunk)
                finally:
                    source.close()
                if digest.hexdigest() != docs[kind].sha256:
                    # The stored document no longer matches its recorded hash: copying again won't help.
                    return AttemptResult(
                        False,
                        error=f"{docs[kind].storage_key}: sha256 {digest.hexdigest()} differs from the "
                        f"document's {docs[kind].sha256}; not archived",
                        permanent=True,
                    )
                copy.seek(0)
                written = storage.put(key, copy)
            if written != docs[kind].sha256:  # the storage changed it on the way: try again later
                return AttemptResult(False, error=f"{key}: written sha256 {written} differs; retrying")
        return AttemptResult(True)


def channel_for(delivery: Delivery) -> Channel:
    row = delivery.channel
    if row.kind == ChannelKind.EMAIL:
        return EmailChannel(row)
    if row.kind == ChannelKind.WEBHOOK:
        return WebhookChannel(row, message_id=f"msg_{delivery.id}")
    return ArchiveChannel(row)


def attempt(channel: Channel, invoice: Invoice, documents: Sequence[InvoiceDocument]) -> tuple:
    """Run one delivery; return (AttemptResult, duration in ms).

    Any error becomes a recorded, retryable failure: an attempt that left no row would keep the
    delivery pending with nothing on the page to say why.
    """
    started = time.monotonic()
    try:
        result = channel.deliver(invoice, documents)
    except StorageError as exc:
        result = AttemptResult(False, error=f"storage: {exc}")
    except Exception as exc:
        log.exception("delivery attempt through %s failed unexpectedly", type(channel).__name__)
        result = AttemptResult(False, error=f"{type(exc).__name__}: {exc}")
    duration_ms = int((time.monotonic() - started) * 1000)
    return result, duration_ms
