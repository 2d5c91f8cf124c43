"""Two tabs deciding the same needs-review upload at once: the status change is one guarded UPDATE,
so exactly one decision wins, the other is told why, and the line items are inserted once."""

import io
import threading

import pytest
from sqlalchemy import func, select

from portal import jobs
from portal.extensions import db
from portal.ingest.receive import receive_upload
from portal.ingest.review import UploadStateError, cancel_upload, import_valid_rows
from portal.models import LineItem, Partner, Upload
from tests.samples import ROW1, ROW2, csv_bytes

BAD = "E103,Di,ACME,T-4,Tuition,abc,USD,2026-01-15,,"
ACTIONS = {
    "import": lambda upload: import_valid_rows(upload, user=None),
    "cancel": lambda upload: cancel_upload(upload, user=None),
}


def needs_review(app) -> int:
    with app.app_context():
        partner = db.session.scalar(select(Partner).where(Partner.slug == "state-u"))
        upload = receive_upload(
            partner, io.BytesIO(csv_bytes(ROW1, ROW2, BAD)), "oct.csv", user=None, max_bytes=1 << 20
        )
        db.session.commit()
        upload_id, job_id = upload.id, upload.job_id
        jobs.run_job(job_id)
        assert db.session.get(Upload, upload_id).status.value == "needs_review"
        return upload_id


def decide_in_thread(app, upload_id, action, loaded, results, go=None, acted=None, hold=None):
    """One tab: load the upload (as its page did), wait for `go`, decide (then set `acted`), hold
    the transaction open until `hold` is set, then commit."""

    def run():
        with app.app_context():
            try:
                upload = db.session.get(Upload, upload_id)
                assert upload.status.value == "needs_review"
                loaded.wait(10)
                if go is not None:
                    go.wait(10)
                ACTIONS[action](upload)
                if acted is not None:
                    acted.set()
                if hold is not None:
                    hold.wait(10)
                db.session.commit()
                results[action] = "won"
            except UploadStateError as exc:
                db.session.rollback()
                results[action] = str(exc)
            finally:
                db.session.remove()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize("first", ["import", "cancel"])
def test_import_and_cancel_from_two_tabs_when_simultaneous_exactly_one_wins(app, partner, backend, first):
    """Both tabs read the upload as needing review; the first decision holds its transaction open
    while the second is made. The second waits for it, then is refused with the upload's status."""
    upload_id = needs_review(app)
    second = "cancel" if first == "import" else "import"
    results: dict[str, str] = {}
    loaded, first_acted, commit_first = threading.Barrier(2), threading.Event(), threading.Event()
    threads = [
        decide_in_thread(app, upload_id, first, loaded, results, acted=first_acted, hold=commit_first),
        decide_in_thread(app, upload_id, second, loaded, results, go=first_acted),
    ]
    first_acted.wait(10)
    threading.Timer(0.5, commit_first.set).start()  # the second is waiting on the row lock by then
    for thread in threads:
        thread.join(30)

    done = {"import": "imported", "cancel": "cancelled"}
    assert results[first] == "won"
    assert results[second] == f"upload #{upload_id} is {done[first]} and cannot be {done[second]}"
    with app.app_context():
        assert db.session.get(Upload, upload_id).status.value == done[first]
        assert db.session.scalar(select(func.count(LineItem.id))) == (2 if first == "import" else 0)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_import_and_cancel_from_two_tabs_when_racing_line_items_inserted_once(app, partner, backend):
    upload_id = needs_review(app)
    results: dict[str, str] = {}
    loaded = threading.Barrier(2)
    threads = [decide_in_thread(app, upload_id, action, loaded, results) for action in ("import", "cancel")]
    for thread in threads:
        thread.join(30)

    assert sorted(results.values()).count("won") == 1
    winner = next(action for action, result in results.items() if result == "won")
    loser = "cancel" if winner == "import" else "import"
    assert "cannot be" in results[loser]
    with app.app_context():
        status = db.session.get(Upload, upload_id).status.value
        assert status == {"import": "imported", "cancel": "cancelled"}[winner]
        assert db.session.scalar(select(func.count(LineItem.id))) == (2 if winner == "import" else 0)
