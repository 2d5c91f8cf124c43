"""Forms of the invoice pages (customer decisions, admin actions)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, Regexp

DENY_REASONS = [
    ("", "Choose a reason"),
    ("Employee not ours or no longer employed", "Employee not ours or no longer employed"),
    ("Course or expense not covered by our policy", "Course or expense not covered by our policy"),
    ("Amount does not match what was agreed", "Amount does not match what was agreed"),
    ("Line billed twice", "Line billed twice"),
    ("Other", "Other (explain below)"),
]


class ApproveForm(FlaskForm):
    comment = TextAreaField("Comment (optional)", validators=[Optional(), Length(max=2000)])
    submit = SubmitField("Approve invoice")


class DenyForm(FlaskForm):
    reason = SelectField("Reason", choices=DENY_REASONS, validators=[DataRequired("Choose a reason.")])
    details = TextAreaField("Details", validators=[Optional(), Length(max=2000)])
    submit = SubmitField("Deny invoice")

    def validate(self, extra_validators=None) -> bool:
        # A field-level validator would not run on an empty, Optional() field: check it here.
        ok = super().validate(extra_validators)
        if self.reason.data == "Other" and not (self.details.data or "").strip():
            self.details.errors = [*self.details.errors, "Explain the reason when you choose Other."]
            return False
        return ok

    def full_reason(self) -> str:
        details = (self.details.data or "").strip()
        if self.reason.data == "Other":
            return details
        return f"{self.reason.data}: {details}" if details else self.reason.data


DISPUTE_COMMENT_MAX = 1000


class DisputeForm(FlaskForm):
    """One line's dispute: what is wrong with it, which our team reads when resolving it."""

    comment = TextAreaField(
        "What is wrong with this line?",
        validators=[
            DataRequired("Say what is wrong with the line: a comment is required to dispute it."),
            Length(
                max=DISPUTE_COMMENT_MAX,
                message=f"Keep the comment to {DISPUTE_COMMENT_MAX} characters at most.",
            ),
        ],
    )


class GenerateForm(FlaskForm):
    customer = SelectField("Customer", validators=[DataRequired()])
    period = StringField(
        "Period",
        validators=[
            DataRequired(),
            Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", message="Write the period as YYYY-MM."),
        ],
    )
    submit = SubmitField("Generate now")


class ReasonForm(FlaskForm):
    reason = StringField("Reason", validators=[DataRequired("A reason is required."), Length(max=500)])
    submit = SubmitField("Void invoice")
