"""The viewer's locale and time zone, and the template filters that format for them.

Locale: the best match of the browser's Accept-Language among `formatting.LOCALES`, else the
DEFAULT_LOCALE setting. Zone: a customer contact sees their company's zone; everyone else the
DISPLAY_TIMEZONE setting (UTC by default). Each shown time names its zone.
"""

from __future__ import annotations

from babel import negotiate_locale
from flask import Flask, current_app, g, has_request_context, request
from flask_login import current_user

from portal.core import formatting


def viewer_locale() -> str:
    if not has_request_context():
        return current_app.config.get("DEFAULT_LOCALE", formatting.DEFAULT_LOCALE)
    if "viewer_locale" not in g:
        preferred = [lang.replace("-", "_") for lang, _ in request.accept_languages]
        g.viewer_locale = negotiate_locale(preferred, list(formatting.LOCALES)) or current_app.config.get(
            "DEFAULT_LOCALE", formatting.DEFAULT_LOCALE
        )
    return g.viewer_locale


def viewer_timezone() -> str:
    fallback = current_app.config.get("DISPLAY_TIMEZONE", "UTC")
    if not has_request_context() or not current_user.is_authenticated:
        return fallback
    if "viewer_timezone" not in g:
        customer = getattr(current_user, "customer", None) if current_user.customer_id else None
        g.viewer_timezone = customer.timezone if customer is not None and customer.timezone else fallback
    return g.viewer_timezone


def init_app(app: Flask) -> None:
    """Filters: `money(currency)`, `number`, `date`, `datetime`, `datetime_s` (with seconds), `period`."""
    app.add_template_filter(
        lambda minor, currency: formatting.money(minor, currency, viewer_locale()), "money"
    )
    app.add_template_filter(lambda v: formatting.number(v, viewer_locale()), "number")
    app.add_template_filter(lambda v: formatting.date(v, viewer_locale(), viewer_timezone()), "date")
    app.add_template_filter(lambda v: formatting.datetime(v, viewer_locale(), viewer_timezone()), "datetime")
    app.add_template_filter(
        lambda v: formatting.datetime(v, viewer_locale(), viewer_timezone(), seconds=True), "datetime_s"
    )
    app.add_template_filter(lambda v: formatting.period(v, viewer_locale()), "period")
    app.add_template_filter(lambda v: formatting.month(v, viewer_locale()), "month")

    @app.context_processor
    def inject_locale():
        return {"html_lang": formatting.language_tag(viewer_locale())}
