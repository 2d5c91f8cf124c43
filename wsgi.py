"""WSGI entry point: `gunicorn wsgi:app` in production, or any WSGI server."""

from portal import create_app

app = create_app()
