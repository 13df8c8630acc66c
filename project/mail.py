"""send_email(): SMTP when `MAIL_SERVER` is set, else the message is written to the log.

Called from jobs (the email queue), so an SMTP failure raises and RQ retries with backoff.
"""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage

from flask import current_app

log = logging.getLogger(__name__)


def send_email(to: str, subject: str, text: str, html: str | None = None) -> None:
    config = current_app.config
    message = EmailMessage()
    message["From"] = config["MAIL_DEFAULT_SENDER"]
    message["To"] = to
    message["Subject"] = subject
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")

    if not config.get("MAIL_SERVER"):
        # Development and testing read their links here. Production refuses to start without
        # MAIL_SERVER; should it get here anyway, the body (links, tokens) stays out of the log.
        if config.get("APP_ENV") == "production":
            log.error("email to=%s subject=%s not sent: no MAIL_SERVER", to, subject)
            return
        log.info("email (no MAIL_SERVER set) to=%s subject=%s\n%s", to, subject, text)
        return
    with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=10) as smtp:
        if config.get("MAIL_USE_TLS"):
            smtp.starttls()
        if config.get("MAIL_USERNAME"):
            smtp.login(config["MAIL_USERNAME"], config.get("MAIL_PASSWORD") or "")
        smtp.send_message(message)
    log.info("email sent to=%s subject=%s", to, subject)
