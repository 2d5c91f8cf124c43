"""Forms shared by every page: `EmptyForm`, the CSRF token alone, for button-only POSTs.

Logout, import, cancel, approve-a-dispute and the like post nothing but the token; each validates it here.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SubmitField


class EmptyForm(FlaskForm):
    """A form with only the CSRF token, for button-only POSTs such as logout."""

    submit = SubmitField("Submit")
