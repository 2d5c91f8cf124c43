"""The receiving side of the Standard Webhooks spec, written with hashlib/hmac only (not with the
library the portal signs with), so a signing mistake in the portal cannot cancel itself out."""

import base64
import hashlib
import hmac
import time

TOLERANCE_SECONDS = 5 * 60


def sign_from_spec(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_from_spec(secret: str, headers: dict, body: bytes) -> str | None:
    """Return None if the request is authentic, else why not."""
    msg_id, timestamp = headers.get("webhook-id"), headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and timestamp and signatures):
        return "missing webhook headers"
    if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        return "timestamp outside tolerance"
    expected = sign_from_spec(secret, msg_id, timestamp, body)
    for versioned in signatures.split(" "):
        version, _, signature = versioned.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return None
    return "no matching signature"
