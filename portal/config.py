"""Settings for the portal, read from the environment when the app is created.

Nothing here is read at import time: `load_config()` is called by `create_app()`, so tests and
scripts can build apps with different environments in one process.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _secret_key(instance_path: Path, environ: Mapping[str, str]) -> str:
    """Use SECRET_KEY if set; otherwise generate one once and keep it in instance/.

    A key generated per process would log everyone out on restart and break sessions between web
    processes, so the generated key is written to a file with owner-only permissions.
    """
    if environ.get("SECRET_KEY"):
        return environ["SECRET_KEY"]
    key_file = instance_path / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    # Several processes may start at once (web workers, test workers): write a complete file under
    # a private name, then link it into place atomically; whoever loses the race reads the winner's.
    fd, tmp = tempfile.mkstemp(dir=instance_path, prefix=".secret_key-")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        os.chmod(tmp, 0o600)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, key_file)
    finally:
        os.unlink(tmp)
    return key_file.read_text().strip()


def load_config(instance_path: str | Path, environ: Mapping[str, str] | None = None) -> dict:
    """Return the app's settings from `environ` (default: the process environment).

    Every setting is documented in README.md ("Configuration").
    """
    env = os.environ if environ is None else environ
    instance = Path(instance_path)
    portal_env = env.get("PORTAL_ENV", "development")
    redis_url = env.get("REDIS_URL") or None
    idle_minutes = int(env.get("SESSION_IDLE_MINUTES", "30"))
    return {
        "PORTAL_ENV": portal_env,
        "SECRET_KEY": _secret_key(instance, env),
        "SQLALCHEMY_DATABASE_URI": env.get("DATABASE_URL") or f"sqlite:///{instance / 'portal.db'}",
        "REDIS_URL": redis_url,
        "STORAGE_URL": env.get("STORAGE_URL") or f"file://{instance / 'storage'}",
        "S3_ENDPOINT_URL": env.get("S3_ENDPOINT_URL") or None,
        "MAIL_SERVER": env.get("MAIL_SERVER") or None,
        "MAIL_PORT": int(env.get("MAIL_PORT", "587")),
        "MAIL_USERNAME": env.get("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": env.get("MAIL_PASSWORD") or None,
        "MAIL_USE_TLS": _bool(env.get("MAIL_USE_TLS"), default=True),
        "MAIL_FROM": env.get("MAIL_FROM", "Tuition Invoice Portal <invoices@localhost>"),
        "MAIL_OUTBOX_DIR": str(instance / "mail"),
        "PORTAL_BASE_URL": env.get("PORTAL_BASE_URL", "http://127.0.0.1:5000"),
        # Sessions: the cookie is HttpOnly and SameSite=Lax always, Secure outside development.
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": portal_env != "development",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SECURE": portal_env != "development",
        "PERMANENT_SESSION_LIFETIME": timedelta(minutes=idle_minutes),
        "SESSION_IDLE_MINUTES": idle_minutes,
        # A session ends this long after its login, however busy (a stolen cookie cannot live on).
        "SESSION_ABSOLUTE_HOURS": int(env.get("SESSION_ABSOLUTE_HOURS", "12")),
        "LOGIN_RATE_LIMIT": env.get("LOGIN_RATE_LIMIT", "5 per minute"),
        # Failed logins per account (the email typed), from any address.
        "LOGIN_ACCOUNT_RATE_LIMIT": env.get("LOGIN_ACCOUNT_RATE_LIMIT", "10 per 15 minutes"),
        # Requests per API token (the whole API shares one budget per token); over it: 429 + Retry-After.
        "API_RATE_LIMIT": env.get("API_RATE_LIMIT", "600 per minute"),
        # How long the first answer to a POST with an Idempotency-Key is replayed (24 at least).
        "IDEMPOTENCY_HOURS": max(24, int(env.get("IDEMPOTENCY_HOURS", "24"))),
        "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI") or redis_url or "memory://",
        # Redis down: count limits in this process's memory (with a logged warning), never answer 500.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        # Proxies in front of the app whose X-Forwarded-For / -Proto are believed (0: none, the default).
        "TRUSTED_PROXY_COUNT": int(env.get("TRUSTED_PROXY_COUNT", "0")),
        "MAX_CONTENT_LENGTH": int(env.get("MAX_UPLOAD_MB", "50")) * 1024 * 1024,
        # The in-process worker runs only in embedded mode; tests run jobs explicitly instead.
        "INVOICE_REMINDER_DAYS": int(env.get("INVOICE_REMINDER_DAYS", "5")),
        # Deliverables: our details on every PDF, and the caps of the separate rendering process.
        "COMPANY_NAME": env.get("COMPANY_NAME", "Tuition Invoice Portal"),
        "COMPANY_ADDRESS": env.get("COMPANY_ADDRESS", "1 Learning Way\nSpringfield, ST 00000\nUnited States"),
        # A logo file (SVG or PNG) shown in the header, the emails and the PDF instead of our mark.
        "COMPANY_LOGO": env.get("COMPANY_LOGO") or None,
        "COMPANY_EMAIL": env.get("COMPANY_EMAIL", "billing@localhost"),
        # Payment instructions printed on every invoice (newline-separated; {number} = the invoice's).
        "REMIT_TO": env.get(
            "REMIT_TO",
            "Bank transfer to Tuition Invoice Portal\nAccount 000123456 · Routing 021000021\n"
            "Reference: invoice {number}",
        ),
        # Pages format money and dates for the viewer's browser language; this when none matches.
        "DEFAULT_LOCALE": env.get("DEFAULT_LOCALE", "en_US"),
        # The zone of times shown to admins and partners (contacts see their company's zone).
        "DISPLAY_TIMEZONE": env.get("DISPLAY_TIMEZONE", "UTC"),
        "RENDER_TIMEOUT_SECONDS": int(env.get("RENDER_TIMEOUT_SECONDS", "300")),
        "RENDER_MEMORY_MB": int(env.get("RENDER_MEMORY_MB", "1536")),
        "RENDER_SERVER": _bool(env.get("RENDER_SERVER"), default=True),
        "RENDER_THEN_DELIVER": _bool(env.get("RENDER_THEN_DELIVER"), default=True),
        # After a webhook secret is rotated, the old one still signs (next to the new) this long.
        "WEBHOOK_SECRET_GRACE_HOURS": int(env.get("WEBHOOK_SECRET_GRACE_HOURS", "24")),
        # Webhook hosts allowed to be private/loopback or plain http (comma-separated names, IPs, CIDRs).
        "WEBHOOK_ALLOWLIST": [h.strip() for h in env.get("WEBHOOK_ALLOWLIST", "").split(",") if h.strip()],
        "EMBEDDED_WORKER": _bool(env.get("EMBEDDED_WORKER"), default=True),
        "JOB_SWEEP_SECONDS": int(env.get("JOB_SWEEP_SECONDS", "20")),
        # A running job whose worker has not refreshed its heartbeat for this long is handed back.
        "JOB_HEARTBEAT_TIMEOUT_SECONDS": int(env.get("JOB_HEARTBEAT_TIMEOUT_SECONDS", "90")),
        # Only functions of these packages may run as jobs (a stored job names its function).
        "JOB_MODULE_PREFIXES": ("portal.",),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    }
