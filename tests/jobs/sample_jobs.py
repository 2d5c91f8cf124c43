"""Job functions used by the job tests: each leaves a row the test can look for."""

import time

from portal.core import audit
from portal.extensions import db

CALLS = {"flaky": 0}


def note(text: str) -> dict:
    audit.record("test.job_ran", details={"note": text})
    db.session.commit()
    return {"note": text}


def always_fails(text: str) -> None:
    raise RuntimeError(f"cannot do {text}")


def slow(seconds: float) -> dict:
    """A job that is alive but slow: it holds no transaction while it waits."""
    time.sleep(seconds)
    return note(f"slept {seconds}")
