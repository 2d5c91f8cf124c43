"""The invoice page with htmx and without: the decision follows the disputes, errors stand next to the
comment box, and the line table's filters live in the URL (a reload or a shared link shows them)."""

from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import Dispute, Invoice
from tests.factories import invoice_status, line_id_by_amount

HTMX = {"HX-Request": "true"}


@pytest.fixture
def contact(client, auth, invoice_id):
    auth.login("contact@acme.example")
    return client


def _oob_decision(html: str) -> str:
    start = html.index('<section id="decision"')
    return html[start : html.index("</section>", start)]


def _lines_section(html: str) -> str:
    start = html.index('<section id="lines"')
    return html[start : html.index("</section>", start)]


def _disputes(app) -> list[Dispute]:
    with app.app_context():
        return db.session.scalars(select(Dispute)).all()


def test_dispute_via_htmx_when_flagged_returns_decision_out_of_band_to_approve_undisputed(
    app,
    contact,
    invoice_id,
):
    response = contact.post(
        f"/customer/invoices/{invoice_id}/lines/{line_id_by_amount(app, 4500)}/dispute",
        data={"comment": "Not enrolled"},
        headers=HTMX,
    )
    html = response.data.decode()
    assert response.status_code == 200
    decision = _oob_decision(html)
    assert 'hx-swap-oob="true"' in decision
    assert "Approve the undisputed lines" in decision and "Approve $1,245.00" not in decision
    assert "You disputed 1 line ($45.00)" in decision and "($1,200.00)" in decision
    assert "Disputed: Not enrolled" in _lines_section(html)


def test_withdraw_via_htmx_when_last_dispute_returns_decision_to_approve_whole_total(
    app,
    contact,
    invoice_id,
):
    line = line_id_by_amount(app, 4500)
    contact.post(f"/customer/invoices/{invoice_id}/lines/{line}/dispute", data={"comment": "No"})
    html = contact.post(f"/customer/invoices/{invoice_id}/lines/{line}/undispute", headers=HTMX).data.decode()
    decision = _oob_decision(html)
    assert "Approve $1,245.00" in decision and "Approve the undisputed lines" not in decision
    assert _disputes(app) == []


def test_dispute_via_htmx_does_not_copy_comment_into_approval_comment(app, contact, invoice_id):
    html = contact.post(
        f"/customer/invoices/{invoice_id}/lines/{line_id_by_amount(app, 4500)}/dispute",
        data={"comment": "Not enrolled"},
        headers=HTMX,
    ).data.decode()
    assert "Not enrolled</textarea>" not in _oob_decision(html)


def test_dispute_plain_post_redirects_to_invoice_page_with_same_view(app, contact, invoice_id):
    response = contact.post(
        f"/customer/invoices/{invoice_id}/lines/{line_id_by_amount(app, 4500)}/dispute?q=person&sort=amount",
        data={"comment": "Not enrolled"},
    )
    assert response.status_code == 302
    location = urlsplit(response.location)
    assert location.path == f"/customer/invoices/{invoice_id}" and location.fragment == "lines"
    assert parse_qs(location.query) == {"q": ["person"], "sort": ["amount"]}
    page = contact.get(response.location).data.decode()
    assert "Line disputed" in page and "Approve the undisputed lines" in page


def test_dispute_via_htmx_when_comment_empty_answers_400_with_error_next_to_comment(
    app,
    contact,
    invoice_id,
):
    line = line_id_by_amount(app, 4500)
    response = contact.post(
        f"/customer/invoices/{invoice_id}/lines/{line}/dispute", data={"comment": "  "}, headers=HTMX
    )
    html = response.data.decode()
    assert response.status_code == 400
    assert f'aria-describedby="dispute-error-{line}"' in html
    assert f'id="dispute-error-{line}" class="field-error" role="alert">Say what is wrong' in html
    assert _disputes(app) == []


def test_dispute_when_comment_too_long_answers_400_and_keeps_what_was_typed(app, contact, invoice_id):
    line = line_id_by_amount(app, 4500)
    comment = "x" * 1001
    response = contact.post(
        f"/customer/invoices/{invoice_id}/lines/{line}/dispute", data={"comment": comment}, headers=HTMX
    )
    html = response.data.decode()
    assert response.status_code == 400
    assert "Keep the comment to 1000 characters at most." in html
    assert f">{comment}</textarea>" in html
    assert _disputes(app) == []


def test_dispute_without_javascript_when_comment_empty_shows_page_with_error(app, contact, invoice_id):
    line = line_id_by_amount(app, 4500)
    response = contact.post(f"/customer/invoices/{invoice_id}/lines/{line}/dispute", data={"comment": ""})
    html = response.data.decode()
    assert response.status_code == 400
    assert "<title>" in html and f'id="dispute-error-{line}"' in html


def test_dispute_when_invoice_approved_meanwhile_answers_409_and_empties_decision(
    app,
    client,
    auth,
    invoice_id,
):
    auth.login("second@acme.example")
    client.post(f"/customer/invoices/{invoice_id}/approve", data={})
    html_response = client.post(
        f"/customer/invoices/{invoice_id}/lines/{line_id_by_amount(app, 4500)}/dispute",
        data={"comment": "Not enrolled"},
        headers=HTMX,
    )
    html = html_response.data.decode()
    assert html_response.status_code == 409
    assert '<div id="decision" hx-swap-oob="true"></div>' in html
    assert "lines can be disputed only before a decision" in html
    assert _disputes(app) == []


def test_invoice_page_when_filter_params_shows_that_view_with_controls_set(app, contact, invoice_id):
    html = contact.get(f"/customer/invoices/{invoice_id}?q=person+2&type=tutoring&sort=-amount").data.decode()
    lines = _lines_section(html)
    assert "$45.00" in lines and "$1,200.00" not in lines
    assert 'name="q" type="search" value="person 2"' in lines
    assert '<option value="tutoring" selected>' in lines
    assert '<option value="-amount" selected>' in lines


def test_invoice_page_when_page_param_shows_that_page(app, contact, invoice_id, monkeypatch):
    from portal.web import invoices as invoice_views

    monkeypatch.setattr(invoice_views, "LINES_PAGE", 1)
    html = contact.get(f"/customer/invoices/{invoice_id}?sort=amount&page=2").data.decode()
    lines = _lines_section(html)
    # Prior-period adjustments come last: page 2 of "amount" holds the $45.00 adjustment.
    assert "$45.00" in lines and "$1,200.00" not in lines
    assert "Page 2 of 2" in lines
    assert f'href="/customer/invoices/{invoice_id}?sort=amount#lines"' in lines  # back to page 1


def test_lines_fragment_for_htmx_is_the_section_alone_and_names_page_url(app, contact, invoice_id):
    response = contact.get(f"/customer/invoices/{invoice_id}/lines?q=person+2&sort=date", headers=HTMX)
    html = response.data.decode()
    assert html.startswith('<section id="lines"') and "<title>" not in html
    assert "Person 2" in html and "Person 1 " not in html
    pushed = urlsplit(response.headers["HX-Replace-Url"])
    assert pushed.path == f"/customer/invoices/{invoice_id}"
    assert parse_qs(pushed.query) == {"q": ["person 2"], "sort": ["date"]}


def test_lines_url_without_htmx_redirects_to_page_with_filters(contact, invoice_id):
    response = contact.get(f"/customer/invoices/{invoice_id}/lines?type=tuition")
    assert response.status_code == 302
    assert response.location == f"/customer/invoices/{invoice_id}?type=tuition#lines"


def test_line_filter_form_swaps_results_only_and_last_change_wins(contact, invoice_id):
    form = _lines_section(contact.get(f"/customer/invoices/{invoice_id}").data.decode())
    form = form[form.index('<form id="lines-filters"') : form.index("</form>")]
    assert 'hx-target="#line-results"' in form and 'hx-sync="this:queue last"' in form
    assert f'action="/customer/invoices/{invoice_id}#lines"' in form  # without JavaScript: the page


def test_admin_invoice_page_when_filter_params_shows_that_view(app, client, auth, invoice_id):
    auth.login("admin@example.com")
    lines = _lines_section(client.get(f"/admin/invoices/{invoice_id}?type=tuition").data.decode())
    assert "$1,200.00" in lines and "$45.00" not in lines
    assert '<option value="tuition" selected>' in lines


def test_decision_forms_ask_for_confirmation(contact, invoice_id):
    html = contact.get(f"/customer/invoices/{invoice_id}").data.decode()
    assert 'hx-confirm="Approve ACME-2026-10-1 for $1,245.00?"' in html
    assert 'hx-confirm="Deny ACME-2026-10-1?' in html


def test_boosted_approve_redirects_to_page_showing_approved(app, contact, invoice_id):
    response = contact.post(
        f"/customer/invoices/{invoice_id}/approve", data={}, headers={**HTMX, "HX-Boosted": "true"}
    )
    assert response.status_code == 302 and response.location == f"/customer/invoices/{invoice_id}"
    page = contact.get(response.location).data.decode()
    assert "You approved invoice ACME-2026-10-1." in page and "Your decision" not in page
    assert invoice_status(app, invoice_id) == "approved"


def test_deny_without_reason_answers_400_with_error_next_to_reason(
    app,
    contact,
    invoice_id,
):
    response = contact.post(
        f"/customer/invoices/{invoice_id}/deny", data={"reason": ""}, headers={**HTMX, "HX-Boosted": "true"}
    )
    assert response.status_code == 400
    assert 'id="reason-error" class="field-error">Choose a reason.' in response.data.decode()
    with contact.application.app_context():
        assert db.session.get(Invoice, invoice_id).status.value == "pending_approval"
