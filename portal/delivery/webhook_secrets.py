"""Webhook signing secrets: made in the Standard Webhooks form ("whsec_" + base64) and rotated.

A rotation can keep the old secret signing for a grace period (WEBHOOK_SECRET_GRACE_HOURS, 24 by
default): each delivery then carries two signatures in `webhook-signature` ("v1,<new> v1,<old>"), as
the Standard Webhooks spec allows, so a receiver still holding the old secret keeps accepting
deliveries until it is updated. A leaked secret is rotated with no grace: it stops signing at once.

A rotation is audited without the secret itself (and with the URL's credentials redacted): the audit
trail is readable by more people than should be able to sign messages as us.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets

from flask import current_app

from portal.core import audit
from portal.delivery.outbound import redacted_url
from portal.models import ChannelKind, DeliveryChannel, User
from portal.models.base import utcnow

SECRET_BYTES = 24


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def default_grace() -> dt.timedelta:
    return dt.timedelta(hours=current_app.config["WEBHOOK_SECRET_GRACE_HOURS"])


def rotate_secret(channel: DeliveryChannel, *, by: User | None, grace: dt.timedelta | None = None) -> str:
    """Give a webhook channel a new secret and return it (to show once); the caller commits.

    Attempts made from now on, including retries of earlier deliveries, are signed with it, and for
    `grace` (default WEBHOOK_SECRET_GRACE_HOURS; zero: not at all) also with the secret it replaces.
    """
    if channel.kind != ChannelKind.WEBHOOK:
        raise ValueError(f"only webhook channels have a secret, not {channel.kind} channels")
    grace = default_grace() if grace is None else grace
    if grace < dt.timedelta(0):
        raise ValueError("the grace period cannot be negative")
    old = channel.secret
    channel.secret = new_webhook_secret()
    if old and grace:
        channel.previous_secret, channel.previous_secret_until = old, utcnow() + grace
    else:
        channel.previous_secret, channel.previous_secret_until = None, None
    until = channel.previous_secret_until
    audit.record(
        "delivery_channel.secret_rotated",
        subject=channel,
        actor=by,
        details={
            "channel_id": channel.id,
            "target": redacted_url(channel.target),
            "old_secret_signs_until": until.isoformat() if until else None,
        },
    )
    return channel.secret


def signing_secrets(channel: DeliveryChannel, *, now: dt.datetime | None = None) -> list[str]:
    """The secrets that sign a delivery now: the current one, then the old one during its grace."""
    now = now or utcnow()
    keys = [channel.secret] if channel.secret else []
    until = channel.previous_secret_until
    if channel.previous_secret and until and until > now:
        keys.append(channel.previous_secret)
    return keys
