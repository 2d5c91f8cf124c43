"""The audit anchor: the chain head a verification vouched for, signed and kept in the database,
so events cut off the end are found even after Redis lost everything; and its published line."""

from sqlalchemy import func, select, text

from portal import accounts, jobs
from portal.core import audit_chain
from portal.extensions import db
from portal.models.audit import AuditAnchor, AuditEvent


def _make_events(app, n=5):
    with app.app_context():
        for i in range(n):
            accounts.create_partner(slug=f"anchored-{i}", name=f"Anchored {i}")
            db.session.commit()


def _sql(app, *statements):
    """Raw SQL as an intruder with database access would run it (PostgreSQL's trigger off meanwhile)."""
    with app.app_context():
        pg = db.engine.dialect.name == "postgresql"
        with db.engine.begin() as conn:
            if pg:
                conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
            for sql in statements:
                conn.execute(text(sql))
            if pg:
                conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))


def _flush_redis(app):
    with app.app_context():
        jobs.get_connection().flushdb()


def test_verify_when_tail_cut_off_after_anchor_and_redis_flushed_reports_missing_events(app, audit_runner):
    _make_events(app, 5)
    assert audit_runner.invoke(args=["audit", "verify"]).output.strip() == "ok 5 events"
    _flush_redis(app)
    _sql(app, "DELETE FROM audit_events WHERE seq > 3")
    result = audit_runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert "events after #3 are missing: the anchor of " in result.output
    assert "vouched for 5 events, the log now has 3" in result.output


def test_verify_when_intact_writes_signed_anchor_of_the_head_it_walked(app, audit_runner):
    _make_events(app, 4)
    audit_runner.invoke(args=["audit", "verify"])
    with app.app_context():
        row = db.session.scalar(select(AuditAnchor))
        head = db.session.scalar(select(AuditEvent).where(AuditEvent.seq == 4))
        assert (row.head_seq, row.head_event_id, row.head_hash, row.event_count) == (4, head.id, head.hash, 4)
        assert audit_chain.AnchorLine.of(row).signature_valid()


def test_verify_when_chain_broken_writes_no_anchor(app, audit_runner):
    _make_events(app, 3)
    _sql(app, "UPDATE audit_events SET actor_label = 'someone else' WHERE seq = 2")
    assert audit_runner.invoke(args=["audit", "verify"]).exit_code == 1
    with app.app_context():
        assert db.session.scalar(select(func.count(AuditAnchor.id))) == 0


def test_verify_when_anchor_signature_tampered_reports_forged_anchor(app, audit_runner):
    _make_events(app, 3)
    audit_runner.invoke(args=["audit", "verify"])
    # Lowering the count by hand would hide a later truncation; without the key it cannot be re-signed.
    _sql(app, "UPDATE audit_anchors SET event_count = 2, head_seq = 2")
    result = audit_runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert "has an invalid signature: it was forged or altered" in result.output


def test_verify_when_forged_anchor_row_added_reports_it(app, audit_runner):
    _make_events(app, 3)
    audit_runner.invoke(args=["audit", "verify"])
    _sql(
        app,
        "INSERT INTO audit_anchors (head_seq, head_event_id, head_hash, event_count, verified_at, signature) "
        "SELECT head_seq, head_event_id, head_hash, event_count, verified_at, '"
        + "0" * 64
        + "' FROM audit_anchors",
    )
    result = audit_runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert "has an invalid signature" in result.output


def test_anchor_print_when_verified_prints_a_line_that_verifies_the_chain(app, audit_runner):
    _make_events(app, 3)
    audit_runner.invoke(args=["audit", "verify"])
    line = audit_runner.invoke(args=["audit", "anchor", "--print"]).output.strip()
    assert line.startswith("audit-anchor v1 seq=3 ")
    with app.app_context():
        stored = audit_chain.AnchorLine.of(db.session.scalar(select(AuditAnchor)))
        assert audit_chain.AnchorLine.parse(line) == stored
    result = audit_runner.invoke(args=["audit", "verify", "--anchor", line])
    assert (result.exit_code, result.output.strip()) == (0, "ok 3 events")


def test_verify_with_published_anchor_when_tail_and_stored_anchors_removed_reports_missing(app, audit_runner):
    _make_events(app, 4)
    audit_runner.invoke(args=["audit", "verify"])
    line = audit_runner.invoke(args=["audit", "anchor", "--print"]).output.strip()
    _flush_redis(app)
    _sql(app, "DELETE FROM audit_events WHERE seq > 2", "DELETE FROM audit_anchors")
    result = audit_runner.invoke(args=["audit", "verify", "--anchor", line])
    assert result.exit_code == 1
    assert "events after #2 are missing" in result.output and "vouched for 4 events" in result.output


def test_verify_with_published_anchor_when_line_altered_reports_invalid_signature(app, audit_runner):
    _make_events(app, 3)
    audit_runner.invoke(args=["audit", "verify"])
    line = audit_runner.invoke(args=["audit", "anchor", "--print"]).output.strip()
    altered = line.replace("seq=3 ", "seq=2 ").replace("count=3 ", "count=2 ")
    result = audit_runner.invoke(args=["audit", "verify", "--anchor", altered])
    assert result.exit_code == 1
    assert "the published anchor's signature is invalid" in result.output


def test_verify_with_published_anchor_when_line_malformed_explains(app, audit_runner):
    result = audit_runner.invoke(args=["audit", "verify", "--anchor", "audit-anchor v1 seq=3"])
    assert result.exit_code == 2
    assert "the anchor line lacks id, count, hash, at, sig" in result.output


def test_anchor_print_when_never_verified_says_to_verify_first(app, audit_runner):
    result = audit_runner.invoke(args=["audit", "anchor", "--print"])
    assert result.exit_code == 1
    assert "no anchor yet: run 'flask audit verify' first" in result.output


def test_verify_now_button_when_intact_anchors_and_page_shows_it_after_redis_flushed(
    app, client, auth, tenants
):
    auth.login()
    client.post("/admin/audit/verify")
    with app.app_context():
        assert db.session.scalar(select(func.count(AuditAnchor.id))) == 1
    _flush_redis(app)
    assert "Intact:" in client.get("/admin/audit").get_data(as_text=True)


def test_verify_now_button_when_tail_cut_off_after_redis_flushed_shows_missing_events(
    app, client, auth, tenants
):
    auth.login()
    client.post("/admin/audit/verify")
    _flush_redis(app)
    _sql(app, "DELETE FROM audit_events WHERE seq = (SELECT MAX(seq) FROM audit_events)")
    html = client.post("/admin/audit/verify", follow_redirects=True).get_data(as_text=True)
    assert "are missing: the anchor of" in html


def test_anchor_resign_when_secret_key_rotated_makes_verify_pass_again(app, audit_runner):
    _make_events(app, 3)
    audit_runner.invoke(args=["audit", "verify"])
    app.config["SECRET_KEY"] = "a-rotated-secret-key"
    assert "has an invalid signature" in audit_runner.invoke(args=["audit", "verify"]).output
    result = audit_runner.invoke(args=["audit", "anchor", "--resign"])
    assert result.exit_code == 0 and result.output.startswith("event seq 3 ")
    assert audit_runner.invoke(args=["audit", "verify"]).output.strip() == "ok 3 events"


def test_anchor_resign_when_tail_cut_off_still_reports_missing_events(app, audit_runner):
    _make_events(app, 3)
    audit_runner.invoke(args=["audit", "verify"])
    app.config["SECRET_KEY"] = "a-rotated-secret-key"
    _sql(app, "DELETE FROM audit_events WHERE seq = 3")
    result = audit_runner.invoke(args=["audit", "anchor", "--resign"])
    assert result.exit_code == 1 and "events after #2 are missing" in result.output
