"""Landing pages, role guards, error pages and /healthz."""

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from flask import url_for

LANDINGS = {"admin": "/admin/", "partner": "/partner/", "customer": "/customer/"}  # partner: uploads
EMAILS = {"admin": "admin@example.com", "partner": "partner@example.com", "customer": "customer@example.com"}


@pytest.mark.parametrize("role", LANDINGS)
def test_landing_when_own_role_is_shown(client, auth, tenants, role):
    auth.login(EMAILS[role])
    response = client.get(LANDINGS[role])
    assert response.status_code == 200


@pytest.mark.parametrize("role,other", [(r, o) for r in LANDINGS for o in LANDINGS if r != o])
def test_landing_when_other_role_is_refused_403(client, auth, tenants, role, other):
    auth.login(EMAILS[role])
    response = client.get(LANDINGS[other])
    assert response.status_code == 403
    assert b"You do not have access to this page." in response.data


@pytest.mark.parametrize("path", LANDINGS.values())
def test_landing_when_anonymous_redirects_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_every_actor_route_refuses_other_roles(app, client, auth, tenants):
    """No view of the admin or partner blueprint can be reached by a customer, whatever its path."""
    auth.login(EMAILS["customer"])
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.split(".")[0] in {"admin", "partner"}]
    assert len(rules) > 10
    for rule in rules:
        path = re.sub(r"<any\([^)]*\):[^>]+>", "pdf", rule.rule)
        path = re.sub(r"<(?:int:)?[^>]+>", "1", path)
        method = "GET" if "GET" in rule.methods else "POST"
        assert client.open(path, method=method).status_code == 403, (method, path)


def test_partner_landing_shows_own_partner_name(client, auth, tenants):
    auth.login("partner2@example.com")
    page = client.get("/partner/").data
    assert b"Other University" in page and b"State University" not in page


def test_customer_landing_counts_only_own_employees(client, auth, tenants):
    auth.login("customer@example.com")
    page = client.get("/customer/").get_data(as_text=True)
    card = page.split("Enrolled employees", 1)[1].split("</div>", 1)[0]
    assert '<span class="stat-value">2</span>' in card


def test_admin_landing_lists_recent_audit_events(client, auth, tenants):
    auth.login()
    page = client.get("/admin/").data
    assert b"partner.created" in page and b"auth.login" in page


def test_home_when_logged_in_redirects_to_landing(client, auth, tenants):
    auth.login("customer@example.com")
    assert client.get("/").headers["Location"] == "/customer/"


def test_unknown_page_answers_404_page(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert b"There is nothing here." in response.data


def test_unknown_page_answers_json_to_api_clients(client):
    response = client.get("/no/such/page", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.json["status"] == 404


def test_server_error_answers_500_page(app, client):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.route("/boom")
    def boom():
        raise RuntimeError("boom")

    response = client.get("/boom")
    assert response.status_code == 500
    assert b"Something went wrong on our side." in response.data


def test_pages_use_vendored_assets_only(client):
    page = client.get("/login").data.decode()
    assert "/static/vendor/htmx-2.0.8.min.js" in page
    assert "/static/vendor/pico-2.1.1.min.css" in page
    assert "https://" not in page


def test_vendored_assets_are_served(client):
    assert client.get("/static/vendor/htmx-2.0.8.min.js").status_code == 200


def test_healthz_when_all_up_reports_ok(client, backend):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json
    assert body["status"] == "ok"
    assert body["checks"]["database"]["backend"] == backend
    assert body["checks"]["queue"]["mode"] == ("embedded" if backend == "sqlite" else "redis")
    assert body["checks"]["storage"]["ok"] is True


def test_healthz_when_queue_down_reports_503(app, client):
    app.extensions["redis"] = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json["checks"]["queue"]["ok"] is False
    assert response.json["checks"]["database"]["ok"] is True


def test_url_for_login_is_stable(app):
    with app.test_request_context():
        assert url_for("auth.login") == "/login"


def test_brand_when_company_logo_set_serves_it_in_the_header(app, client, auth, tenants, tmp_path):
    logo = tmp_path / "logo.svg"
    logo.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"><rect width="1" height="1"/></svg>'
    )
    app.config.update(COMPANY_LOGO=str(logo), COMPANY_NAME="Benefits Co")
    auth.login(EMAILS["customer"])
    page = client.get("/customer/").get_data(as_text=True)
    assert '<img src="/brand/logo"' in page and "Benefits Co</span>" in page
    response = client.get("/brand/logo")
    assert response.status_code == 200 and response.data == logo.read_bytes()
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_brand_when_no_company_logo_uses_our_mark(client):
    response = client.get("/brand/logo")
    assert response.status_code == 302 and response.location.endswith("/static/brand.svg")


def test_healthz_when_40_probes_run_at_once_all_answer_200(app):
    """Concurrent probes (a load balancer, a monitor, a deploy) each check storage with their own
    file: none deletes another's probe, so none answers 503."""
    barrier = threading.Barrier(8)

    def probe_five() -> list[int]:
        client = app.test_client()
        barrier.wait()
        return [client.get("/healthz").status_code for _ in range(5)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = [code for codes in pool.map(lambda _: probe_five(), range(8)) for code in codes]
    assert len(statuses) == 40
    assert [code for code in statuses if code != 200] == []
