"""Email: the one module through which the portal sends mail, rendered from templates/mail/.

By SMTP when MAIL_SERVER is set; otherwise (embedded mode) as readable `.eml` files in MAIL_OUTBOX_DIR.
"""

from __future__ import annotations

import logging
import secrets
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid, parseaddr
from pathlib import Path

from flask import current_app

log = logging.getLogger(__name__)

SMTP_TIMEOUT = 30


class MailError(Exception):
    """The message was not sent. Raised from a job, it makes RQ retry the job later."""


@dataclass
class Attachment:
    filename: str
    content: bytes
    mimetype: str


def send_mail(
    to: list[str],
    subject: str,
    *,
    text: str,
    html: str | None = None,
    attachments: Sequence[Attachment] = (),
    reply_to: str | None = None,
) -> str:
    """Send one message to `to` and return its Message-ID.

    Through SMTP when MAIL_SERVER is set, otherwise into MAIL_OUTBOX_DIR as an `.eml` file.
    Raises MailError when the message is refused here or by the server.
    """
    config = current_app.config
    msg = _build(to, subject, text=text, html=html, attachments=attachments, reply_to=reply_to)
    if config.get("MAIL_SERVER"):
        _send_smtp(msg)
    else:
        path = _write_outbox(msg, Path(config["MAIL_OUTBOX_DIR"]))
        log.info("mail %s written to %s (MAIL_SERVER is not set)", msg["Message-ID"], path)
    return msg["Message-ID"]


def render_mail(template: str, **context) -> tuple[str, str]:
    """Render templates/mail/<template>.txt and .html with `context`; return (text, html).

    Both twins also get `company` (our name, address lines and email, for the header and footer),
    so every message carries the brand without each caller passing it. Works in an app context
    alone: the templates are rendered by the app's Jinja environment directly, without Flask's
    context processors, which serve pages and may need a request that a job does not have. Only
    the .html is autoescaped (Flask's rule, by file name), so the plain-text part shows names
    exactly as written.
    """
    context = {"company": company(), **context}
    env = current_app.jinja_env
    text = env.get_template(f"mail/{template}.txt").render(context)
    html = env.get_template(f"mail/{template}.html").render(context)
    return text, html


def company() -> dict:
    """Who sends the mail, from the COMPANY_* settings: name, address lines, contact email."""
    config = current_app.config
    address = config.get("COMPANY_ADDRESS") or ""
    return {
        "name": config.get("COMPANY_NAME") or "Tuition Invoice Portal",
        "address": [line.strip() for line in address.splitlines() if line.strip()],
        "email": config.get("COMPANY_EMAIL") or "",
    }


def _one_line(value: str, what: str) -> str:
    # A CR or LF in a header value would let the caller (or a user-supplied name) add headers
    # such as Bcc; refuse it outright rather than trying to clean it.
    if "\r" in value or "\n" in value:
        raise MailError(f"{what} must not contain a line break: {value!r}")
    return value


def _address(value: str, what: str) -> str:
    _one_line(value, what)
    # One list item must be one mailbox: "a@x, b@y" would silently add a recipient.
    parsed = getaddresses([value])
    if len(parsed) != 1 or "@" not in parsed[0][1]:
        raise MailError(f"{what} is not a single email address: {value!r}")
    return value


def _build(
    to: list[str],
    subject: str,
    *,
    text: str,
    html: str | None,
    attachments: Sequence[Attachment],
    reply_to: str | None,
) -> EmailMessage:
    # A bare string is iterable too: "a@x.org" would become eight one-letter recipients.
    if isinstance(to, str) or not to:
        raise MailError("send_mail needs a non-empty list of recipients")
    sender = current_app.config["MAIL_FROM"]
    msg = EmailMessage()
    msg["From"] = _address(sender, "MAIL_FROM")
    msg["To"] = ", ".join(_address(addr, "recipient") for addr in to)
    if reply_to:
        msg["Reply-To"] = _address(reply_to, "reply_to")
    msg["Subject"] = _one_line(subject, "subject")
    msg["Date"] = formatdate(usegmt=True)
    # make_msgid() without a domain calls socket.getfqdn(), which can block on a slow DNS lookup;
    # the sender's domain is ours and unique enough with make_msgid's random part.
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    msg["Message-ID"] = make_msgid(domain=domain)
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for attachment in attachments:
        maintype, _, subtype = attachment.mimetype.partition("/")
        if not maintype or not subtype:
            raise MailError(f"attachment {attachment.filename!r} has no valid MIME type")
        msg.add_attachment(
            attachment.content,
            maintype=maintype,
            subtype=subtype,
            filename=_one_line(attachment.filename, "attachment filename"),
        )
    return msg


def _send_smtp(msg: EmailMessage) -> None:
    config = current_app.config
    host, port = config["MAIL_SERVER"], config["MAIL_PORT"]
    try:
        with smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT) as smtp:
            smtp.ehlo()
            if config["MAIL_USE_TLS"]:
                # Never fall back to plain text silently: credentials and invoices would cross the
                # network unencrypted. A local relay without TLS must be chosen explicitly.
                if not smtp.has_extn("starttls"):
                    raise MailError(
                        f"mail server {host}:{port} does not offer STARTTLS; "
                        "set MAIL_USE_TLS=false for a local relay"
                    )
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()  # the server's extensions may differ once encrypted (AUTH, often)
            if config["MAIL_USERNAME"]:
                smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"] or "")
            refused = smtp.send_message(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        refusals = _refusals(exc.recipients)
        raise MailError(f"mail server {host}:{port} refused every recipient: {refusals}") from exc
    except smtplib.SMTPResponseException as exc:
        raise MailError(f"mail server {host}:{port} said {exc.smtp_code} {_decode(exc.smtp_error)}") from exc
    except (smtplib.SMTPException, OSError) as exc:
        # OSError covers refused connections, DNS failures, timeouts and TLS handshake errors.
        raise MailError(f"cannot send mail through {host}:{port}: {exc}") from exc
    if refused:
        # The others have the message already: raising would make the job resend it to them.
        log.warning("mail %s: some recipients were refused: %s", msg["Message-ID"], _refusals(refused))
    log.info("mail %s sent through %s:%s", msg["Message-ID"], host, port)


def _write_outbox(msg: EmailMessage, outbox: Path) -> Path:
    outbox.mkdir(parents=True, exist_ok=True)
    # The name is ours (time + random), never the subject or an address: it sorts by time and
    # cannot escape the folder. Mode "xb" never overwrites another message.
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = outbox / f"{stamp}-{secrets.token_hex(4)}.eml"
    with open(path, "xb") as fh:
        fh.write(msg.as_bytes())
    return path


def _decode(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _refusals(recipients: dict) -> str:
    return "; ".join(f"{addr}: {code} {_decode(error)}" for addr, (code, error) in recipients.items())
