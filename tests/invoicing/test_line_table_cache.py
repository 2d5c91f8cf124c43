"""The line table kept between requests (issue 15): the order of a view's lines and its rendered HTML
are shared by viewers of the same view, never what makes a page one viewer's own (the CSRF token in
the dispute forms), and never a state older than the invoice's status and disputes."""

import re

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.invoicing import queries
from portal.models import Dispute, Invoice
from tests.conftest import AuthActions
from tests.factories import line_id_by_amount

HTMX = {"HX-Request": "true"}
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def contacts(app, invoice_id):
    """Two contacts of ACME, each with a client of their own, logged in."""
    clients = []
    for email in ("contact@acme.example", "second@acme.example"):
        client = app.test_client()
        AuthActions(client).login(email)
        clients.append(client)
    return clients


def _lines(client, invoice_id, query: str = "") -> str:
    response = client.get(f"/customer/invoices/{invoice_id}/lines{query}", headers=HTMX)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_kept_table_when_two_contacts_view_it_each_gets_own_working_csrf_token(app, contacts, invoice_id):
    first, second = contacts
    first_html, second_html = _lines(first, invoice_id), _lines(second, invoice_id)
    first_tokens, second_tokens = set(TOKEN.findall(first_html)), set(TOKEN.findall(second_html))
    assert len(first_tokens) == 1 and len(second_tokens) == 1
    assert first_tokens != second_tokens
    assert "csrf-slot-" not in first_html + second_html
    assert TOKEN.sub("", first_html) == TOKEN.sub("", second_html)  # the same table otherwise

    app.config["WTF_CSRF_ENABLED"] = True
    line = line_id_by_amount(app, 4500)
    stolen = second.post(
        f"/customer/invoices/{invoice_id}/lines/{line}/dispute",
        data={"comment": "Wrong token", "csrf_token": first_tokens.pop()},
        headers=HTMX,
    )
    assert stolen.status_code == 400
    own = second.post(
        f"/customer/invoices/{invoice_id}/lines/{line}/dispute",
        data={"comment": "Not enrolled", "csrf_token": second_tokens.pop()},
        headers=HTMX,
    )
    assert own.status_code == 200
    assert "Disputed: Not enrolled" in own.get_data(as_text=True)


def test_kept_table_when_dispute_comment_changed_shows_new_comment(app, contacts, invoice_id):
    first, second = contacts
    line = line_id_by_amount(app, 4500)
    first.post(f"/customer/invoices/{invoice_id}/lines/{line}/dispute", data={"comment": "Not enrolled"})
    assert "Disputed: Not enrolled" in _lines(second, invoice_id)
    with app.app_context():
        dispute = db.session.scalar(select(Dispute))
        dispute.comment = "Dropped the course in week 1"
        db.session.commit()
    html = _lines(second, invoice_id)
    assert "Disputed: Dropped the course in week 1" in html and "Not enrolled" not in html


def test_kept_table_when_invoice_approved_meanwhile_shows_no_dispute_forms(app, contacts, invoice_id):
    first, second = contacts
    assert "Dispute this line" in _lines(second, invoice_id)
    first.post(f"/customer/invoices/{invoice_id}/approve", data={})
    assert "Dispute this line" not in _lines(second, invoice_id)
    page = second.get(f"/customer/invoices/{invoice_id}").get_data(as_text=True)
    assert "Dispute this line" not in page


def test_invoice_page_and_fragment_show_the_same_kept_table(contacts, invoice_id):
    first, _ = contacts
    page = first.get(f"/customer/invoices/{invoice_id}?sort=-amount").get_data(as_text=True)
    fragment = _lines(first, invoice_id, "?sort=-amount")
    start = page.index('<section id="lines"')
    kept = TOKEN.sub("", fragment).strip()
    assert TOKEN.sub("", page[start:]).startswith(kept)


@pytest.mark.parametrize(
    ("sort", "filters"),
    [
        ("employee", {}),
        ("-amount", {}),
        ("date", {"q": "person 2"}),
        ("amount", {"expense_type": "tutoring"}),
    ],
)
def test_line_order_when_kept_matches_a_fresh_query(app, invoice_id, billing, sort, filters):
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        kept = queries.line_order(invoice, sort=sort, **filters)
        assert queries.line_order(invoice, sort=sort, **filters) is kept  # asked again: the kept tuple
        app.extensions.pop("invoice_line_orders")
        fresh = queries.line_order(invoice, sort=sort, **filters)
        assert fresh == kept and len(fresh) == queries.count_lines(invoice, sort=sort, **filters)
        rows = queries.invoice_lines(invoice, sort=sort, limit=1, offset=len(fresh) - 1, **filters)
        assert [row[0].id for row in rows] == list(fresh[-1:])
