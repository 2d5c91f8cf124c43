"""Configuring a customer's delivery channels: add, enable or disable, with validation and audit.

Webhook secrets are generated here and shown once to the admin who created or rotated them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from flask import current_app

from portal.core import audit
from portal.delivery.outbound import (
    RefusedURL,
    UnresolvableHost,
    check_url,
    plain_http_allowed,
    redacted_url,
)
from portal.delivery.webhook_secrets import new_webhook_secret
from portal.extensions import db
from portal.models import ChannelKind, Customer, DeliveryChannel, User


class ChannelError(ValueError):
    """Bad channel settings; the message says which field and why."""


def _check_emails(target: str) -> str:
    addresses = [a.strip() for a in target.split(",") if a.strip()]
    for address in addresses:
        try:
            validate_email(address, check_deliverability=False)
        except EmailNotValidError as exc:
            raise ChannelError(f"target: {address!r} is not a valid email address ({exc})") from exc
    return ", ".join(addresses)  # empty = the customer's active contacts


def _check_webhook(target: str) -> str:
    """The URL as it will be called, refused now for what sending would refuse (outbound.check_url).

    A host that does not resolve at the moment is accepted: DNS may not be set up yet, and every
    send checks the addresses again.
    """
    target = target.strip()
    try:
        parts = urlsplit(target)
        hostname = parts.hostname
    except ValueError as exc:
        raise ChannelError(f"target: not a valid URL ({exc})") from exc
    if parts.scheme not in ("https", "http") or not hostname:
        raise ChannelError("target: a webhook needs an https:// URL")
    allowlist = current_app.config["WEBHOOK_ALLOWLIST"]
    if parts.scheme == "http" and not plain_http_allowed(hostname, allowlist):
        raise ChannelError("target: webhooks must use https (plain http only for hosts in WEBHOOK_ALLOWLIST)")
    try:
        check_url(target, allowlist)
    except RefusedURL as exc:
        raise ChannelError(f"target: {exc}") from exc
    except UnresolvableHost:
        pass
    return target


def add_channel(
    customer: Customer, kind: str, target: str = "", *, by: User | None
) -> tuple[DeliveryChannel, str | None]:
    """Add a channel; returns it and, for a webhook, the new signing secret (to show once)."""
    try:
        channel_kind = ChannelKind(kind)
    except ValueError as exc:
        raise ChannelError(f"kind: choose one of {', '.join(k.value for k in ChannelKind)}") from exc
    secret = None
    if channel_kind == ChannelKind.EMAIL:
        target = _check_emails(target or "")
    elif channel_kind == ChannelKind.WEBHOOK:
        target = _check_webhook(target or "")
        secret = new_webhook_secret()
    else:
        target = ""
    channel = DeliveryChannel(
        customer_id=customer.id, kind=channel_kind, target=target, secret=secret, enabled=True
    )
    db.session.add(channel)
    db.session.flush()
    audit.record(
        "delivery_channel.created",
        subject=channel,
        customer_id=customer.id,
        actor=by,
        details={"kind": channel_kind.value, "target": redacted_url(target)},
    )
    return channel, secret


def set_enabled(channel: DeliveryChannel, enabled: bool, *, by: User | None) -> None:
    before = channel.enabled
    channel.enabled = enabled
    if enabled:
        channel.disabled_reason = None
    elif not channel.disabled_reason:
        channel.disabled_reason = f"disabled by {by.email if by else 'an operator'}"
    audit.record(
        "delivery_channel.enabled" if enabled else "delivery_channel.disabled",
        subject=channel,
        customer_id=channel.customer_id,
        actor=by,
        details={"before": {"enabled": before}, "after": {"enabled": enabled}},
    )
