"""Plain-text email over SMTP (aiosmtplib), with STARTTLS and auth.

One connection per notice: connect, EHLO, STARTTLS (refused to go on in clear when
``starttls`` is set and the server does not offer it), AUTH, send, QUIT. The body is UTF-8
plain text with what a technician needs on site (:func:`text.email_body`); the Subject is
one line (:func:`text.subject`). SMTP 4xx answers and network failures may be retried;
5xx answers, refused credentials and a certificate that does not verify will not pass by
trying again.
"""

from __future__ import annotations

import ssl
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Final

import aiosmtplib

from wardwatch.collector.alerts import text
from wardwatch.collector.alerts.config import EmailChannel
from wardwatch.collector.alerts.model import DeliveryError, Notice

_NETWORK_ERRORS: Final = (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError, OSError)


def build_message(notice: Notice, cfg: EmailChannel) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = text.subject(notice)
    msg["From"] = cfg.sender
    msg["To"] = ", ".join(cfg.to)
    msg["Date"] = format_datetime(datetime.fromtimestamp(time.time(), tz=UTC))
    msg["Message-ID"] = make_msgid(domain=cfg.sender.rpartition("@")[2] or "wardwatch")
    msg["X-Wardwatch-Group"] = notice.group_key
    msg["X-Wardwatch-Kind"] = notice.kind
    msg.set_content(text.email_body(notice), subtype="plain", charset="utf-8")
    return msg


class EmailSender:
    def __init__(self, name: str, cfg: EmailChannel) -> None:
        self.name = name
        self.cfg = cfg
        self._tls: ssl.SSLContext | None = None

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context(cafile=str(self.cfg.ca_file) if self.cfg.ca_file else None)
        return self._tls

    async def send(self, notice: Notice) -> None:
        cfg = self.cfg
        msg = build_message(notice, cfg)
        tls = self._context() if (cfg.tls or cfg.starttls) else None
        smtp = aiosmtplib.SMTP(
            hostname=cfg.host, port=cfg.port, timeout=cfg.timeout, use_tls=cfg.tls, start_tls=False, tls_context=tls
        )
        try:
            await smtp.connect()
            if cfg.starttls:
                await smtp.ehlo()
                if not smtp.supports_extension("starttls"):
                    raise DeliveryError(
                        f"{cfg.host}:{cfg.port} offers no STARTTLS; refusing to send in clear (starttls: true)",
                        retry=False,
                    )
                await smtp.starttls(tls_context=tls)
            if cfg.username is not None and cfg.password is not None:
                await smtp.login(cfg.username, cfg.password.get_secret_value())
            await smtp.send_message(msg, sender=cfg.sender, recipients=list(cfg.to))
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                pass  # the message was accepted; a failed goodbye changes nothing
        except DeliveryError:
            raise
        except ssl.SSLCertVerificationError as exc:
            where = f"{cfg.host}:{cfg.port}"
            raise DeliveryError(f"{where}: certificate not trusted: {exc.verify_message}", retry=False) from None
        except aiosmtplib.SMTPAuthenticationError as exc:
            why = f"SMTP auth refused for {cfg.username}: {exc.code} {exc.message}"
            raise DeliveryError(why, retry=False, status=exc.code) from None
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            retry = all(400 <= c < 500 for c in codes)
            refused = ", ".join(f"{r.recipient} ({r.code} {r.message})" for r in exc.recipients)
            status = codes[0] if codes else None
            raise DeliveryError(f"SMTP refused recipients: {refused}", retry=retry, status=status) from None
        except aiosmtplib.SMTPResponseException as exc:
            retry = 400 <= exc.code < 500
            raise DeliveryError(f"SMTP {exc.code}: {exc.message}", retry=retry, status=exc.code) from None
        except aiosmtplib.SMTPTimeoutError as exc:
            raise DeliveryError(f"SMTP timeout: {exc}", retry=True) from None
        except _NETWORK_ERRORS as exc:
            raise DeliveryError(f"SMTP {cfg.host}:{cfg.port}: {type(exc).__name__}: {exc}", retry=True) from None
        except aiosmtplib.SMTPException as exc:
            raise DeliveryError(f"SMTP: {exc}", retry=False) from None
        finally:
            if smtp.is_connected:
                smtp.close()  # no QUIT on the way out of a failure or a cancellation: nothing to wait for

    async def close(self) -> None:
        return None
