"""The overview's figures, and 403 for partners and customers on every console page."""

import datetime as dt

import pytest

from portal.extensions import db
from portal.models import Customer, Invoice, InvoiceStatus
from portal.models.base import utcnow

CONSOLE_MODULES = {
    "portal.admin.partners",
    "portal.admin.customers",
    "portal.admin.users",
    "portal.admin.jobs",
    "portal.admin.dashboard",
    "portal.auth.password",
}


def test_overview_when_data_shows_counts_and_latency(app, client, auth, billing):
    billing.add(1000, "2024-03-01")
    billing.add(2000, "2024-03-02")
    now = utcnow()
    with app.app_context():
        acme = db.session.scalar(db.select(Customer.id).where(Customer.code == "ACME"))
        for n, hours in enumerate((4, 8)):
            db.session.add(
                Invoice(
                    number=f"INV-T{n}",
                    customer_id=acme,
                    period_start=dt.date(2024, 1 + n, 1),
                    period_end=dt.date(2024, 1 + n, 28),
                    currency="USD",
                    status=InvoiceStatus.APPROVED,
                    created_at=now - dt.timedelta(hours=hours + 1),
                    decided_at=now - dt.timedelta(hours=1),
                )  # fmt: skip
            )
        db.session.commit()
    auth.login()
    response = client.get("/admin/")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "6.0 h" in text  # average and median of 4 h and 8 h
    month = now.strftime("%b %Y")
    assert f'<th scope="row">{month}</th><td class="num">2</td>' in text
    assert '<th scope="row">approved</th><td class="num">2</td>' in text
    assert "<svg" in text


def test_overview_when_empty_renders(client, auth, tenants):
    auth.login()
    response = client.get("/admin/")
    assert response.status_code == 200 and b"Nothing yet." in response.data


def test_old_dashboard_address_when_visited_redirects_to_overview(client, auth, tenants):
    auth.login()
    response = client.get("/admin/dashboard")
    assert response.status_code == 301 and response.location.endswith("/admin/")


def test_overview_when_work_waits_shows_it_as_needing_attention(app, client, auth, billing):
    billing.add(1000, "2024-03-01")
    with app.app_context():
        acme = db.session.scalar(db.select(Customer.id).where(Customer.code == "ACME"))
        db.session.add(
            Invoice(
                number="INV-W",
                customer_id=acme,
                period_start=dt.date(2024, 3, 1),
                period_end=dt.date(2024, 3, 31),
                currency="USD",
            )  # fmt: skip
        )
        db.session.commit()
    auth.login()
    text = client.get("/admin/").get_data(as_text=True)
    card = text.split("Awaiting customer approval", 1)[1].split("</div>", 1)[0]
    assert 'class="stat-value"><a href="/admin/invoices?status=pending_approval">1</a>' in card


def _console_urls(app, tenants):
    values = {"partner_id": tenants["partner"], "customer_id": tenants["customer"], "employee_id": 1,
              "user_id": 1, "job_id": "x"}  # fmt: skip
    for rule in app.url_map.iter_rules():
        module = app.view_functions[rule.endpoint].__module__
        if module in CONSOLE_MODULES and rule.endpoint.startswith("admin."):
            method = "GET" if "GET" in rule.methods else "POST"
            yield method, rule.build({k: values[k] for k in rule.arguments})[1]


@pytest.mark.parametrize("email", ["partner@example.com", "customer@example.com"])
def test_console_pages_when_not_admin_forbidden(app, client, auth, tenants, email):
    auth.login(email)
    urls = list(_console_urls(app, tenants))
    assert len(urls) >= 15
    for method, url in urls:
        assert client.open(url, method=method).status_code == 403, (method, url)


def test_console_pages_when_anonymous_sent_to_login(app, client, tenants):
    for method, url in _console_urls(app, tenants):
        response = client.open(url, method=method)
        assert response.status_code == 302 and "/login" in response.headers["Location"], (method, url)
