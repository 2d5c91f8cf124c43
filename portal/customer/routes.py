"""Customer contact pages: the landing page (invoices arrive with the invoicing feature)."""

from flask import render_template
from flask_login import current_user
from sqlalchemy import func, select

from portal.customer import bp
from portal.extensions import db
from portal.models.customers import Employee
from portal.tenancy import scoped


@bp.route("/")
def index():
    """The customer contact's landing page: their organisation and its enrolled employees."""
    employee_count = db.session.scalar(select(func.count()).select_from(scoped(Employee).subquery()))
    return render_template(
        "customer/index.html", customer=current_user.customer, employee_count=employee_count
    )
