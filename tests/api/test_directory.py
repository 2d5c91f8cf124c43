"""GET /customers, /customers/{code}, /partners, /partners/{slug}: an admin sees all, a contact its
customer, a partner user its partner; another tenant's object is a 404, a role it is not for a 403."""

from __future__ import annotations

import pytest


def test_customers_when_admin_lists_every_customer(as_role):
    response = as_role("admin").get("/customers")
    assert response.status_code == 200
    assert [c["code"] for c in response.json["items"]] == ["ACME", "GLOBEX"]
    assert response.json["next_cursor"] is None


def test_customers_when_contact_lists_only_its_own(as_role):
    response = as_role("customer2").get("/customers")
    assert [c["code"] for c in response.json["items"]] == ["GLOBEX"]


def test_customers_when_partner_answers_403(as_role):
    assert as_role("partner").get("/customers").status_code == 403


def test_customer_when_contacts_own_shows_its_details(as_role):
    response = as_role("customer").get("/customers/ACME")
    assert response.status_code == 200
    body = response.json
    assert body["name"] == "Acme Corp" and body["timezone"] == "America/New_York"
    assert body["invoicing_enabled"] is True and body["kind"] == "corporation"


@pytest.mark.parametrize("role, code", [("customer", "GLOBEX"), ("customer2", "ACME"), ("admin", "NOPE")])
def test_customer_when_another_tenants_or_unknown_answers_404(as_role, role, code):
    response = as_role(role).get(f"/customers/{code}")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_customer_when_admin_any_code_case_answers_200(as_role):
    assert as_role("admin").get("/customers/globex").json["code"] == "GLOBEX"


def test_partners_when_admin_lists_every_partner(as_role):
    response = as_role("admin").get("/partners")
    assert [p["slug"] for p in response.json["items"]] == ["state-u", "other-u"]


def test_partners_when_partner_lists_only_its_own(as_role):
    response = as_role("partner2").get("/partners")
    assert [p["slug"] for p in response.json["items"]] == ["other-u"]


def test_partners_when_contact_answers_403(as_role):
    assert as_role("customer").get("/partners").status_code == 403


def test_partner_when_own_shows_its_details(as_role):
    response = as_role("partner").get("/partners/state-u")
    assert response.status_code == 200
    assert response.json["name"] == "State University" and response.json["default_currency"] == "USD"


@pytest.mark.parametrize("role, slug", [("partner", "other-u"), ("partner2", "state-u")])
def test_partner_when_another_tenants_answers_404(as_role, role, slug):
    assert as_role(role).get(f"/partners/{slug}").status_code == 404


def test_customers_when_no_token_answers_401(as_role):
    assert as_role(None).get("/customers/ACME").status_code == 401
