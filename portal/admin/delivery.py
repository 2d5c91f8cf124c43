"""Admin pages for where invoices go: customers' delivery channels (add, turn off, rotate a webhook
secret), every delivery, and redelivering or waiving an invoice's failed deliveries."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.admin import bp
from portal.delivery import DeliveryError, redeliver, rotate_secret, waive
from portal.delivery.manage import ChannelError, add_channel, set_enabled
from portal.extensions import db
from portal.models import Customer, Delivery, DeliveryChannel, DeliveryStatus, Invoice
from portal.models.base import utcnow
from portal.web.actions import saved
from portal.web.forms import EmptyForm


@bp.route("/invoices/<id:invoice_id>/redeliver", methods=["POST"])
def invoice_redeliver(invoice_id: int):
    """Try the failed deliveries of an invoice again (and new channels added since)."""
    inv = db.get_or_404(Invoice, invoice_id)
    if EmptyForm().validate_on_submit():
        with saved(DeliveryError) as outcome:
            redeliver(inv, by=current_user, include_succeeded=request.form.get("all") == "1")
            outcome.message = f"Redelivery of {inv.number} started."
    return redirect(url_for("admin.invoice", invoice_id=invoice_id))


@bp.route("/deliveries/<id:delivery_id>/waive", methods=["POST"])
def delivery_waive(delivery_id: int):
    """Waive a failed delivery with a reason (a channel the customer no longer uses), so that the
    invoice can count as delivered once its other deliveries have succeeded."""
    delivery = db.get_or_404(Delivery, delivery_id)
    if EmptyForm().validate_on_submit():
        with saved(DeliveryError) as outcome:
            delivered = waive(delivery, by=current_user, reason=request.form.get("reason", ""))
            outcome.message = "Delivery waived." + (
                " Every other delivery succeeded: the invoice is delivered." if delivered else ""
            )
    return redirect(url_for("admin.invoice", invoice_id=delivery.invoice_id) + "#documents")


@bp.route("/customers")
def customers():
    """Customers with their schedule and delivery channels."""
    return _render_customers({})


def _render_customers(errors: dict[int, dict]):
    rows = db.session.scalars(select(Customer).order_by(Customer.code)).all()
    channels: dict[int, list[DeliveryChannel]] = {}
    for channel in db.session.scalars(select(DeliveryChannel).order_by(DeliveryChannel.id)):
        channels.setdefault(channel.customer_id, []).append(channel)
    return render_template(
        "admin/customers.html",
        customers=rows,
        channels=channels,
        form=EmptyForm(),
        errors=errors,
        now=utcnow(),
        grace_hours=current_app.config["WEBHOOK_SECRET_GRACE_HOURS"],
    )


@bp.route("/customers/<id:customer_id>/channels", methods=["POST"])
def channel_add(customer_id: int):
    """Add an email, webhook or archive channel; a webhook's secret is shown once."""
    customer = db.get_or_404(Customer, customer_id)
    if EmptyForm().validate_on_submit():
        try:
            channel, secret = add_channel(
                customer, request.form.get("kind", ""), request.form.get("target", ""), by=current_user
            )
            db.session.commit()
        except ChannelError as exc:  # shown next to the field it names, with what was typed kept
            db.session.rollback()
            field, _, message = str(exc).partition(": ")
            values = {"kind": request.form.get("kind", ""), "target": request.form.get("target", "")}
            return _render_customers({customer.id: {"field": field, "message": message, **values}}), 400
        message = f"Added {channel.kind.value} channel for {customer.code}."
        if secret:
            message += f" Signing secret (shown once, give it to the customer): {secret}"
        flash(message, "success")
    return redirect(url_for("admin.customers"))


@bp.route("/channels/<id:channel_id>/toggle", methods=["POST"])
def channel_toggle(channel_id: int):
    """Turn a delivery channel off (or back on); audited."""
    channel = db.get_or_404(DeliveryChannel, channel_id)
    if EmptyForm().validate_on_submit():
        set_enabled(channel, not channel.enabled, by=current_user)
        db.session.commit()
        flash(
            f"{channel.kind.value.capitalize()} channel {'enabled' if channel.enabled else 'disabled'}.",
            "success",
        )
    return redirect(url_for("admin.customers"))


@bp.route("/channels/<id:channel_id>/rotate", methods=["POST"])
def channel_rotate(channel_id: int):
    """Rotate a webhook's signing secret; the new one is shown once."""
    channel = db.get_or_404(DeliveryChannel, channel_id)
    if EmptyForm().validate_on_submit() and channel.kind.value == "webhook":
        # "grace": keep the old secret signing for the configured hours, or "now": stop it at once.
        choice = request.form.get("after_rotation")
        if choice not in ("grace", "now"):
            flash("Choose whether the old secret keeps signing for a while or stops now.", "error")
            return redirect(url_for("admin.customers"))
        grace = None if choice == "grace" else timedelta(0)
        secret = rotate_secret(channel, by=current_user, grace=grace)
        db.session.commit()
        until = channel.previous_secret_until
        if until:
            after = f"Until {until:%Y-%m-%d %H:%M} UTC deliveries are signed with the old secret too."
        else:
            after = "The old secret no longer signs anything."
        flash(f"New signing secret (shown once, give it to the customer): {secret}. {after}", "success")
    return redirect(url_for("admin.customers"))


@bp.route("/deliveries")
def deliveries():
    """Every delivery, newest first, filtered by status; failed ones link to their invoice to redeliver."""
    status = request.args.get("status", "")
    stmt = select(Delivery).order_by(Delivery.id.desc()).limit(200)
    if status in {s.value for s in DeliveryStatus}:
        stmt = stmt.where(Delivery.status == DeliveryStatus(status))
    return render_template(
        "admin/deliveries.html",
        deliveries=db.session.scalars(stmt).all(),
        status=status,
        statuses=list(DeliveryStatus),
    )
