"""The data model, one module per aggregate; importing this package registers every table."""

from portal.models.api import ApiToken, IdempotencyRecord
from portal.models.audit import AuditEvent, PendingView
from portal.models.customers import Customer, CustomerAlias, CustomerKind, Employee
from portal.models.delivery import (
    ChannelKind,
    Delivery,
    DeliveryAttempt,
    DeliveryChannel,
    DeliveryStatus,
    Dispute,
    DisputeStatus,
    InvoiceDocument,
)
from portal.models.invoices import Invoice, InvoiceLine, InvoiceRun, InvoiceStatus, InvoiceTotal
from portal.models.jobs import JobRecord, JobStatus
from portal.models.line_items import EXPENSE_TYPES, LineItem
from portal.models.partners import Partner, PartnerKind
from portal.models.sessions import SessionEnd, UserSession
from portal.models.uploads import MappingProfileVersion, RowOutcome, Upload, UploadRow, UploadStatus
from portal.models.users import Role, User

__all__ = [
    "ApiToken",
    "IdempotencyRecord",
    "ChannelKind",
    "Delivery",
    "DeliveryAttempt",
    "DeliveryChannel",
    "DeliveryStatus",
    "Dispute",
    "DisputeStatus",
    "InvoiceDocument",
    "AuditEvent",
    "Customer",
    "CustomerAlias",
    "CustomerKind",
    "EXPENSE_TYPES",
    "Employee",
    "Invoice",
    "InvoiceLine",
    "InvoiceRun",
    "InvoiceStatus",
    "InvoiceTotal",
    "JobRecord",
    "JobStatus",
    "LineItem",
    "MappingProfileVersion",
    "Partner",
    "PendingView",
    "PartnerKind",
    "Role",
    "RowOutcome",
    "SessionEnd",
    "Upload",
    "UploadRow",
    "UploadStatus",
    "User",
    "UserSession",
]
