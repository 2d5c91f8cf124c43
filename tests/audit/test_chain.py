"""The audit hash chain: appends link up, tampering with the table is found, concurrency keeps one chain."""

import threading

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from portal import accounts
from portal.core import audit, audit_chain
from portal.extensions import db
from portal.models import AuditEvent
from portal.models.audit import GENESIS_HASH, event_hash


def _make_events(app, n=5):
    with app.app_context():
        for i in range(n):
            accounts.create_partner(slug=f"partner-{i}", name=f"Partner {i}")
            db.session.commit()


def _verify(app):
    with app.app_context():
        return audit_chain.verify_chain(batch=2)


def _tamper(app, *statements):
    """Run raw SQL against audit_events, with the PostgreSQL immutability trigger off meanwhile."""
    with app.app_context():
        pg = db.engine.dialect.name == "postgresql"
        with db.engine.begin() as conn:
            if pg:
                conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
            for sql, params in statements:
                conn.execute(text(sql), params)
            if pg:
                conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))


def test_chain_after_app_actions_links_every_event_and_verifies(app, tenants):
    with app.app_context():
        rows = db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        assert [e.seq for e in rows] == list(range(1, len(rows) + 1))
        assert rows[0].prev_hash == GENESIS_HASH
        assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:], strict=False))
    assert _verify(app) == (True, len(rows), None)


def test_chain_when_several_events_in_one_transaction_chains_them_in_order(app):
    with app.app_context():
        for n in range(3):
            audit.record("test.step", details={"n": n})
        db.session.commit()
        rows = db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        assert [e.details["n"] for e in rows] == [0, 1, 2]
        assert [e.seq for e in rows] == [1, 2, 3]
        assert rows[2].hash == event_hash(
            {c: getattr(rows[2], c) for c in ("seq", "occurred_at", "actor_id", "actor_label", "action",
             "subject_type", "subject_id", "customer_id", "partner_id", "ip", "details", "prev_hash")}
        )  # fmt: skip
    assert _verify(app)[0] is True


def test_verify_when_event_details_edited_reports_that_event(app):
    _make_events(app)
    _tamper(app, ("UPDATE audit_events SET details = :d WHERE seq = 3", {"d": '{"name": "Forged"}'}))
    ok, count, bad = _verify(app)
    assert (ok, count, bad["seq"]) == (False, 2, 3)
    assert "edited" in bad["reason"]


def test_verify_when_event_deleted_reports_the_gap(app):
    _make_events(app)
    _tamper(app, ("DELETE FROM audit_events WHERE seq = 2", {}))
    ok, count, bad = _verify(app)
    assert (ok, count, bad["seq"]) == (False, 1, 3)
    assert "missing" in bad["reason"]


def test_verify_when_forged_event_inserted_in_the_middle_reports_the_break(app):
    _make_events(app, 4)
    with app.app_context():
        second = db.session.scalar(select(AuditEvent).where(AuditEvent.seq == 2))
        forged = {
            "seq": 3, "occurred_at": second.occurred_at, "actor_id": None, "actor_label": "system",
            "action": "partner.created", "subject_type": "Partner", "subject_id": "99", "customer_id": None,
            "partner_id": None, "ip": None, "details": {"slug": "forged"}, "prev_hash": second.hash,
        }  # fmt: skip
        forged["hash"] = event_hash(forged)
    # A careful forger renumbers the later events to make room and hashes the forged one correctly.
    _tamper(
        app,
        ("UPDATE audit_events SET seq = -seq WHERE seq >= 3", {}),
        ("UPDATE audit_events SET seq = 1 - seq WHERE seq < 0", {}),
        (
            "INSERT INTO audit_events (occurred_at, actor_label, action, subject_type, subject_id,"
            " details, seq, prev_hash, hash)"
            " VALUES (:at, 'system', 'partner.created', 'Partner', '99', :d, 3, :p, :h)",
            {"at": second.occurred_at, "d": '{"slug": "forged"}', "p": second.hash, "h": forged["hash"]},
        ),
    )
    ok, count, bad = _verify(app)
    assert (ok, count, bad["seq"]) == (False, 3, 4)


def test_verify_when_event_appended_with_wrong_prev_hash_reports_broken_link(app):
    _make_events(app, 2)
    _tamper(
        app,
        (
            "INSERT INTO audit_events (occurred_at, actor_label, action, details, seq, prev_hash, hash)"
            " VALUES (:at, 'system', 'x', '{}', 3, :p, :h)",
            {"at": "2026-01-01 00:00:00", "p": "f" * 64, "h": "e" * 64},
        ),
    )
    ok, count, bad = _verify(app)
    assert (ok, count, bad["seq"]) == (False, 2, 3)
    assert "inserted" in bad["reason"]


@pytest.mark.parametrize("backend", ["postgresql"])
def test_appends_when_four_writers_concurrent_keep_one_chain(app, backend):
    errors = []
    barrier = threading.Barrier(4)

    def writer(w):
        try:
            with app.app_context():
                barrier.wait()
                for i in range(20):
                    audit.record("test.concurrent", details={"writer": w, "i": i})
                    db.session.commit()
                db.session.remove()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with app.app_context():
        seqs = db.session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)).all()
    assert seqs == list(range(1, 81))
    assert _verify(app) == (True, 80, None)


@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_events SET action = 'forged'", "DELETE FROM audit_events"],
    ids=["update", "delete"],
)
def test_trigger_when_update_or_delete_on_postgresql_refuses(app, backend, statement):
    _make_events(app, 1)
    with app.app_context():
        with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
            conn.execute(text(statement))
        assert db.session.scalar(select(AuditEvent.action)) == "partner.created"


def test_cli_verify_when_chain_intact_prints_ok(app, audit_runner):
    _make_events(app, 3)
    result = audit_runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "ok 3 events"


def test_cli_verify_when_chain_broken_names_event_and_fails(app, audit_runner):
    _make_events(app, 3)
    _tamper(app, ("UPDATE audit_events SET actor_label = 'someone else' WHERE seq = 2", {}))
    with app.app_context():
        event_id = db.session.scalar(select(AuditEvent.id).where(AuditEvent.seq == 2))
    result = audit_runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"chain broken at event seq 2 (id {event_id}): hash does not match" in result.output


def test_verify_when_events_cut_off_the_end_after_a_good_verification_detects_it(app, backend):
    from sqlalchemy import text as sql_text

    from portal import accounts
    from portal.extensions import db

    with app.app_context():
        for n in range(3):
            accounts.create_partner(slug=f"tail-{n}", name=f"Tail {n}")
        db.session.commit()
        ok, count, _ = audit_chain.verify_chain()
        audit_chain.remember_verification(ok, count, None)
        assert ok
        head = db.session.execute(sql_text("SELECT MAX(seq) FROM audit_events")).scalar()
        if backend == "postgresql":
            db.session.execute(sql_text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        db.session.execute(sql_text("DELETE FROM audit_events WHERE seq = :s"), {"s": head})
        if backend == "postgresql":
            db.session.execute(sql_text("ALTER TABLE audit_events ENABLE TRIGGER USER"))
        db.session.commit()
        ok, _, bad = audit_chain.verify_chain()
    assert not ok
    assert "events were removed from the end" in bad["reason"]
