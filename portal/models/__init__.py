"""The data model, one module per aggregate; importing this package registers every table."""

from portal.models.audit import AuditEvent
from portal.models.customers import Customer, CustomerKind, Employee
from portal.models.jobs import JobRecord, JobStatus
from portal.models.partners import Partner, PartnerKind
from portal.models.users import Role, User

__all__ = [
    "AuditEvent",
    "Customer",
    "CustomerKind",
    "Employee",
    "JobRecord",
    "JobStatus",
    "Partner",
    "PartnerKind",
    "Role",
    "User",
]
