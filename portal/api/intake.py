"""Line items in over the API: file uploads (multipart) and JSON batches, with per-row outcomes."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("api_intake", __name__, description="Uploads and line-item batches from partners.")
