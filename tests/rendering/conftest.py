"""Rendering tests run without the delivery step that follows rendering in production."""

import pytest


@pytest.fixture
def app(app):
    # portal.delivery is another issue's work; the enqueue after rendering is tested there.
    app.config["RENDER_THEN_DELIVER"] = False
    return app
