"""Webhook signing secrets: made in the Standard Webhooks form ("whsec_" + base64) and rotated.

A rotation is audited without the secret itself: the audit trail is readable by more people than
should be able to sign messages as us.
"""

from __future__ import annotations

import base64
import secrets

from portal import audit
from portal.models import ChannelKind, DeliveryChannel, User

SECRET_BYTES = 24


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def rotate_secret(channel: DeliveryChannel, *, by: User | None) -> str:
    """Give a webhook channel a new secret and return it (to show once); the caller commits.

    Attempts made from now on, including retries of earlier deliveries, are signed with it.
    """
    if channel.kind != ChannelKind.WEBHOOK:
        raise ValueError(f"only webhook channels have a secret, not {channel.kind} channels")
    channel.secret = new_webhook_secret()
    audit.record(
        "delivery_channel.secret_rotated",
        subject=channel,
        actor=by,
        details={"channel_id": channel.id, "target": channel.target},
    )
    return channel.secret
