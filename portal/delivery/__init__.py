"""Delivery of approved invoices to each customer's channels: email, signed webhook, archive.

`deliver_invoice` (queue `delivery`) starts one Delivery per channel; `attempt_delivery` runs each try.
"""

from portal.delivery.channels import AttemptResult, Channel, archive_key
from portal.delivery.dispatch import (
    MAX_ATTEMPTS,
    DeliveryError,
    DeliveryRetry,
    DeliveryRow,
    attempt_delivery,
    deliver_invoice,
    delivery_summary,
    redeliver,
    retry_schedule,
    waive,
)
from portal.delivery.outbound import redacted_url
from portal.delivery.webhook_secrets import new_webhook_secret, rotate_secret


def init_app(app) -> None:
    """Template helpers of delivery pages: `redacted_url` shows a webhook URL without credentials."""
    app.add_template_filter(redacted_url, "redacted_url")


__all__ = [
    "MAX_ATTEMPTS",
    "AttemptResult",
    "Channel",
    "DeliveryError",
    "DeliveryRetry",
    "DeliveryRow",
    "archive_key",
    "attempt_delivery",
    "deliver_invoice",
    "delivery_summary",
    "init_app",
    "new_webhook_secret",
    "redacted_url",
    "redeliver",
    "retry_schedule",
    "rotate_secret",
    "waive",
]
