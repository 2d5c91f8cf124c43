"""Who may use each route, declared once: the security matrix, the CSRF sweep and the fuzz test
read this table. A route missing here fails tests/security/test_matrix.py, naming the route.

For a role that may use a route, a URL naming its own tenant's objects answers `ok`, another
tenant's 404 (an admin belongs to every tenant: `ok` for both); a signed-in role that may not use
it answers 403; anonymous users are sent to the login page, unless the route says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

ADMIN = frozenset({"admin"})
PARTNER = frozenset({"partner"})
CUSTOMER = frozenset({"customer"})
SIGNED_IN = ADMIN | PARTNER | CUSTOMER
LOGIN = "login"  # the answer "redirect to the login page"


@dataclass(frozen=True)
class Expect:
    roles: frozenset[str]  # the kinds of user who may use the route: admin, partner, customer
    scoped: bool = False  # the URL names a tenant's object: another tenant's answers 404
    ok: int = 200  # what an allowed user's GET answers
    anonymous: int | str = LOGIN  # what an anonymous visitor gets
    public: bool = False  # open to anonymous visitors too
    signed_in: int | None = None  # public routes: what a signed-in user's GET answers (else ok)
    # A REST API route (/api/v1): authenticated by a bearer token only, so a browser's session
    # cookie answers 401 for every role (the matrix checks that); tests/api/test_matrix.py sends the
    # same cells with each role's token and expects `roles`, `scoped` and `ok` as declared here.
    api: bool = False


def public(anonymous: int, signed_in: int | None = None) -> Expect:
    return Expect(SIGNED_IN, ok=anonymous, anonymous=anonymous, public=True, signed_in=signed_in)


def api(roles: frozenset[str], *, scoped: bool = False, ok: int = 200) -> Expect:
    return Expect(roles, scoped=scoped, ok=ok, anonymous=401, api=True)


EXPECT: dict[str, Expect] = {
    # everyone
    "main.index": Expect(SIGNED_IN, ok=302),
    "main.healthz": public(200),
    "main.favicon": public(301),
    "main.brand_logo": public(302),  # COMPANY_LOGO unset in tests: our own mark under /static
    "auth.login": public(200, signed_in=302),
    "auth.forgot_password": public(200),
    "auth.set_password": public(400),  # the token is not a real one: the page says the link is invalid
    "auth.logout": Expect(SIGNED_IN),
    "auth.account_sessions": Expect(SIGNED_IN),
    "auth.change_password": Expect(SIGNED_IN),
    "auth.end_other_sessions": Expect(SIGNED_IN),
    "auth.end_session": Expect(SIGNED_IN),
    "auth.api_tokens": Expect(SIGNED_IN),
    "auth.api_token_create": Expect(SIGNED_IN),
    # only the token's owner may revoke it; the world's token_id is nobody's (tests/auth/test_api_tokens.py)
    "auth.api_token_revoke": Expect(SIGNED_IN, ok=404),
    # partners: their own uploads and mapping profiles
    "partner.uploads": Expect(PARTNER),
    "partner.upload_create": Expect(PARTNER),
    "partner.upload_detail": Expect(PARTNER, scoped=True),
    "partner.upload_status": Expect(PARTNER, scoped=True),
    "partner.upload_file": Expect(PARTNER, scoped=True),
    "partner.upload_errors": Expect(PARTNER, scoped=True),
    "partner.upload_import": Expect(PARTNER, scoped=True),
    "partner.upload_cancel": Expect(PARTNER, scoped=True),
    "partner.upload_mapping": Expect(PARTNER, scoped=True, ok=303),  # mapped already: its page
    "partner.upload_mapping_preview": Expect(PARTNER, scoped=True),
    "partner.upload_trail": Expect(PARTNER, scoped=True),
    "partner.mappings": Expect(PARTNER),
    "partner.mapping_export": Expect(PARTNER),  # by name, within the partner's own profiles
    "partner.mapping_import": Expect(PARTNER),
    # customer contacts: their customer's invoices
    "customer.index": Expect(CUSTOMER),
    "customer.invoice": Expect(CUSTOMER, scoped=True),
    "customer.invoice_lines": Expect(CUSTOMER, scoped=True, ok=302),  # the full page without htmx
    "customer.employee_lines": Expect(CUSTOMER, scoped=True),
    "customer.documents_status": Expect(CUSTOMER, scoped=True),
    "customer.document": Expect(CUSTOMER, scoped=True),
    "customer.invoice_trail": Expect(CUSTOMER, scoped=True),
    "customer.line_dispute": Expect(CUSTOMER, scoped=True),
    "customer.line_undispute": Expect(CUSTOMER, scoped=True),
    "customer.approve": Expect(CUSTOMER, scoped=True),
    "customer.approve_undisputed": Expect(CUSTOMER, scoped=True),
    "customer.deny": Expect(CUSTOMER, scoped=True),
    # admins: everything of every tenant
    "admin.index": Expect(ADMIN),
    "admin.dashboard": Expect(ADMIN, ok=301),  # merged into the overview
    "admin.audit_events": Expect(ADMIN),
    "admin.audit_export": Expect(ADMIN),
    "admin.audit_event": Expect(ADMIN),
    "admin.audit_verify": Expect(ADMIN),
    "admin.invoices": Expect(ADMIN),
    "admin.invoice": Expect(ADMIN),
    "admin.invoice_lines": Expect(ADMIN, ok=302),
    "admin.employee_lines": Expect(ADMIN),
    "admin.documents_status": Expect(ADMIN),
    "admin.document": Expect(ADMIN),
    "admin.invoice_void": Expect(ADMIN),
    "admin.invoice_resolve": Expect(ADMIN),
    "admin.invoice_redeliver": Expect(ADMIN),
    "admin.invoices_generate": Expect(ADMIN),
    "admin.invoice_runs": Expect(ADMIN),
    "admin.disputes_queue": Expect(ADMIN),
    "admin.dispute_resolve": Expect(ADMIN),
    "admin.deliveries": Expect(ADMIN),
    "admin.delivery_waive": Expect(ADMIN),
    "admin.channel_add": Expect(ADMIN),
    "admin.channel_toggle": Expect(ADMIN),
    "admin.channel_rotate": Expect(ADMIN),
    "admin.uploads": Expect(ADMIN),
    "admin.upload_create": Expect(ADMIN),
    "admin.upload_detail": Expect(ADMIN),
    "admin.upload_status": Expect(ADMIN),
    "admin.upload_file": Expect(ADMIN),
    "admin.upload_errors": Expect(ADMIN),
    "admin.upload_import": Expect(ADMIN),
    "admin.upload_alias": Expect(ADMIN),
    "admin.upload_cancel": Expect(ADMIN),
    "admin.upload_mapping": Expect(ADMIN, ok=303),
    "admin.upload_mapping_preview": Expect(ADMIN),
    "admin.mappings": Expect(ADMIN),
    "admin.mapping_export": Expect(ADMIN),
    "admin.mapping_import": Expect(ADMIN),
    "admin.quarantine": Expect(ADMIN),
    "admin.quarantine_release": Expect(ADMIN),
    "admin.partners": Expect(ADMIN),
    "admin.partner_edit": Expect(ADMIN),
    "admin.customers": Expect(ADMIN),
    "admin.customer_new": Expect(ADMIN),
    "admin.customer_edit": Expect(ADMIN),
    "admin.employees": Expect(ADMIN),
    "admin.all_employees": Expect(ADMIN),
    "admin.employees_import": Expect(ADMIN),
    "admin.employee_form": Expect(ADMIN),
    "admin.users": Expect(ADMIN),
    "admin.user_invite": Expect(ADMIN),
    "admin.user_detail": Expect(ADMIN),
    "admin.user_deactivate": Expect(ADMIN),
    "admin.user_reactivate": Expect(ADMIN),
    "admin.user_resend_invite": Expect(ADMIN),
    "admin.user_sign_out_everywhere": Expect(ADMIN),
    "admin.failed_jobs": Expect(ADMIN),
    "admin.job_retry": Expect(ADMIN),
    # the REST API (/api/v1): its document and docs page are public, the rest needs a token
    "api-docs.openapi_json": public(200),
    "api_docs_page.docs": public(200),
    "api_directory.customers": api(ADMIN | CUSTOMER),
    "api_directory.customer": api(ADMIN | CUSTOMER, scoped=True),
    "api_directory.partners": api(ADMIN | PARTNER),
    "api_directory.partner": api(ADMIN | PARTNER, scoped=True),
    "api_schedules.schedules": api(ADMIN),
    "api_schedules.schedule": api(ADMIN),  # also PATCH (api_schedules.schedule_update: same rule)
    "api_schedules.schedule_update": api(ADMIN),
    "api_schedules.schedule_enable": api(ADMIN),
    "api_schedules.schedule_disable": api(ADMIN),
    "api_schedules.schedule_trigger": api(ADMIN, ok=202),
    "api_reports.reports": api(ADMIN | CUSTOMER),
    "api_reports.report": api(ADMIN | CUSTOMER, scoped=True),
    "api_reports.report_lines": api(ADMIN | CUSTOMER, scoped=True),
    "api_reports.download": api(ADMIN | CUSTOMER, scoped=True),
    "api_reports.approve": api(CUSTOMER, scoped=True),
    "api_reports.deny": api(CUSTOMER, scoped=True),
    "api_reports.dispute": api(CUSTOMER, scoped=True),
    "api_intake.upload_create": api(PARTNER, ok=202),
    "api_intake.upload": api(ADMIN | PARTNER, scoped=True),
    "api_intake.line_items": api(PARTNER, ok=201),
}
# Not pages of the portal: files served as they are.
UNCHECKED = {"static"}
