"""The ground floor the rest of the portal stands on: the audit trail, tenancy scoping, file
storage, mail, money, spreadsheet-safe CSV cells and bulk row writes. Knows nothing of HTTP."""
