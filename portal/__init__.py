"""The Tuition Invoice Portal: partners upload expense line items, customers approve invoices.

`create_app()` builds the Flask app: settings from the environment, extensions, one blueprint per
actor, the CLI and error handlers. Nothing is constructed at import time.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_path=os.environ.get("PORTAL_INSTANCE_PATH") or str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    # The subsystems and blueprints are imported inside the factory, not at the top: each of them
    # imports `portal.<something>` itself (a cycle while this module is still running), and a
    # script that only needs `portal.models` then loads no blueprint, view or job code.
    from portal.config import load_config

    app.config.from_mapping(load_config(app.instance_path))
    if test_config:
        app.config.from_mapping(test_config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if app.config.get("TRUSTED_PROXY_COUNT"):
        # Behind N trusted proxies the client's address is the Nth from the right in X-Forwarded-For;
        # without the setting the header is ignored (anyone could send one).
        from werkzeug.middleware.proxy_fix import ProxyFix  # only behind a proxy

        n = app.config["TRUSTED_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)

    from portal import auth, cli, delivery, errors, jobs, web
    from portal.core import storage
    from portal.extensions import csrf, db, limiter, login_manager, migrate
    from portal.web import inputs

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    inputs.init_app(app)  # the `id` URL converter must exist before blueprints add their rules
    storage.init_app(app)
    jobs.init_app(app)
    auth.init_app(app)
    web.init_app(app)
    delivery.init_app(app)
    errors.init_app(app)
    cli.init_app(app)

    from portal.admin import bp as admin_bp
    from portal.auth import bp as auth_bp
    from portal.customer import bp as customer_bp
    from portal.main import bp as main_bp
    from portal.partner import bp as partner_bp

    app.register_blueprint(main_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(partner_bp, url_prefix="/partner")
    app.register_blueprint(customer_bp, url_prefix="/customer")
    app.register_blueprint(admin_bp, url_prefix="/admin")

    from portal import api

    api.init_app(app)  # /api/v1: token-authenticated, CSRF-exempt, its errors as problem+json
    return app
