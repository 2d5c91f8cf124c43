"""An approved invoice with stored PDF/CSV, channels to deliver it to, and a webhook receiver.

The receiver is written from the Standard Webhooks spec with hashlib/hmac only (not with the
library the portal signs with), so a signing mistake in the portal cannot cancel itself out.
"""

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from portal.core.storage import get_storage
from portal.extensions import db
from portal.invoicing.build import run_period
from portal.invoicing.lifecycle import approve
from portal.models import Customer, Invoice, InvoiceDocument
from tests.delivery.webhook_spec import verify_from_spec
from tests.factories import CSV, PDF


class Receiver:
    """A customer's webhook endpoint on 127.0.0.1; `answer` sets the status it replies with."""

    def __init__(self):
        self.secret = ""
        self.answer = 200
        self.requests = []  # (headers, body, problem or None)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                problem = verify_from_spec(receiver.secret, headers, body)
                receiver.requests.append((headers, body, problem))
                self.send_response(401 if problem else receiver.answer)
                self.end_headers()
                self.wfile.write(b"ok" if not problem else problem.encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/invoices"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def payloads(self):
        return [json.loads(body) for _, body, _ in self.requests]


@pytest.fixture
def receiver():
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def invoice_id(app, billing):
    """ACME's October invoice (12.34 USD, one line), approved, with its PDF and CSV stored."""
    app.config["WEBHOOK_ALLOWLIST"] = ["127.0.0.1"]
    billing.add(1234, "2026-10-03")
    with app.app_context():
        customer_id = db.session.scalar(select(Customer.id).where(Customer.code == "ACME"))
        run_period(customer_id, "2026-10", force=True)
        invoice = db.session.scalar(select(Invoice).where(Invoice.customer_id == customer_id))
        approve(invoice, by=None)
        for kind, data in (("pdf", PDF), ("csv", CSV)):
            key = f"invoices/{invoice.id}/{kind}"
            sha = get_storage().put(key, io.BytesIO(data))
            db.session.add(
                InvoiceDocument(
                    invoice_id=invoice.id, kind=kind, storage_key=key, sha256=sha, size_bytes=len(data)
                )
            )
        db.session.commit()
        return invoice.id
