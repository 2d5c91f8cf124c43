"""Sample partner rows and the mapping profile that reads them, shared by the ingestion tests."""

HEADER = (
    "Employee ID,Employee Name,Employer,Transaction ID,Fee Type,Amount,Currency,Date of Service,Course,Term\n"
)
PROFILE = {
    "format": "tuition-portal/mapping-profile",
    "version": 1,
    "columns": {
        "employee_external_id": "Employee ID",
        "employee_name": "Employee Name",
        "customer_code": "Employer",
        "partner_reference": "Transaction ID",
        "expense_type": "Fee Type",
        "amount": "Amount",
        "currency": "Currency",
        "service_date": "Date of Service",
        "description": "Course",
        "term": "Term",
    },
    "date_formats": ["%d.%m.%Y"],
    "decimal_separator": ".",
    "default_currency": "USD",
    "default_customer": None,
    "expense_type_synonyms": {},
    "sheet": None,
    "amount_unit": "major",
    "employee_key": "external_id",
    "customer_match": "code",
}

ROW1 = 'E100,Ana,ACME,T-1,Tuition,"1,234.50",USD,2026-01-15,Econ 101,Spring 2026'
ROW2 = "E101,Bo,ACME,T-2,Books & Materials,89.99,USD,2026-01-20,Econ 101,Spring 2026"
ROW3 = "E102,Cy,GLOBEX,T-3,Tutoring,(45.00),USD,2026-02-01,Math 200,"


def csv_bytes(*rows: str) -> bytes:
    return (HEADER + "".join(r + "\n" for r in rows)).encode()
