"""Outbound mail through an SMTP relay named by SMTP_RELAY_URL, and the email connector the outbox calls.

    smtp://[user:password@]host[:port][?starttls=auto|always|never&timeout=30&cafile=/path/ca.pem]
    smtps://[user:password@]host[:port]          (implicit TLS, port 465 by default)

``smtp://`` upgrades with STARTTLS whenever the relay offers it (``starttls=always`` refuses relays that do
not); credentials are never sent over an unencrypted connection except to a loopback relay. Errors are
mapped for the outbox: 4xx replies and connection trouble retry, 5xx replies fail with the relay's words.
"""

from __future__ import annotations

import ipaddress
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

from connectors.base import OutboundMessage, PermanentSendError, RetryableSendError, SendError
from connectors.email.compose import build_message


@dataclass(frozen=True, slots=True)
class RelayConfig:
    host: str
    port: int
    implicit_tls: bool = False
    starttls: str = "auto"  # auto | always | never
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    cafile: str | None = None

    @classmethod
    def from_url(cls, url: str) -> RelayConfig:
        """Parse SMTP_RELAY_URL; raise ValueError when it is not a usable smtp:// or smtps:// URL."""
        parts = urlsplit(url.strip())
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(f"SMTP_RELAY_URL must look like smtp://host:port or smtps://host:port, not {url!r}")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        starttls = query.get("starttls", "auto").lower()
        if starttls not in ("auto", "always", "never"):
            raise ValueError(f"starttls must be auto, always or never, not {starttls!r}")
        implicit = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if implicit else 25),
            implicit_tls=implicit,
            starttls="never" if implicit else starttls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            timeout=float(query.get("timeout", "30")),
            cafile=query.get("cafile") or None,
        )

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cafile)


def _reply_text(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", errors="replace") if isinstance(reply, bytes) else str(reply)
    return f"{code} {' '.join(text.split())}"


def _classify(code: int, reply: bytes | str, what: str) -> SendError:
    """5xx is the relay's final word; everything else may work later."""
    detail = f"{what}: {_reply_text(code, reply)}"
    return PermanentSendError(detail) if 500 <= code < 600 else RetryableSendError(detail)


def send_mail(config: RelayConfig, mail: EmailMessage, sender: str, recipients: list[str]) -> str:
    """Hand ``mail`` to the relay; return its final reply (e.g. "250 2.0.0 Ok: queued as …"); raise SendError."""
    smtputf8 = bool(getattr(mail.policy, "utf8", False))
    data = mail.as_bytes()
    try:
        if config.implicit_tls:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout, context=config.tls_context()
            )
        else:
            client = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
        with client:
            client.ehlo_or_helo_if_needed()
            encrypted = config.implicit_tls
            if not encrypted and config.starttls != "never" and client.has_extn("starttls"):
                client.starttls(context=config.tls_context())
                client.ehlo()
                encrypted = True
            if not encrypted and config.starttls == "always":
                raise RetryableSendError(f"relay {config.host} does not offer STARTTLS (starttls=always)")
            if config.username:
                if not encrypted and not config.loopback:
                    raise RetryableSendError(
                        f"relay {config.host} offers no TLS; refusing to send the password unencrypted"
                    )
                client.login(config.username, config.password or "")
            options = ["SMTPUTF8"] if smtputf8 and client.has_extn("smtputf8") else []
            if smtputf8 and not options:
                raise PermanentSendError("the address needs SMTPUTF8, which the relay does not support")
            if client.has_extn("size"):
                options.append(f"SIZE={len(data)}")
            code, reply = client.mail(sender, options)
            if code != 250:
                raise _classify(code, reply, "sender refused")
            for recipient in recipients:
                code, reply = client.rcpt(recipient)
                if code not in (250, 251):
                    raise _classify(code, reply, f"recipient {recipient} refused")
            code, reply = client.data(data)
            if code != 250:
                raise _classify(code, reply, "message refused")
            return _reply_text(code, reply)
    except SendError:
        raise
    except (smtplib.SMTPConnectError, smtplib.SMTPHeloError) as exc:
        # A relay that greets us with an error or rejects our EHLO is down or misconfigured, not final.
        raise RetryableSendError(
            f"relay {config.host} unavailable: {_reply_text(exc.smtp_code, exc.smtp_error)}"
        ) from None
    except smtplib.SMTPAuthenticationError as exc:
        # Our credentials, not this message, are wrong: keep the message queued while someone fixes them.
        raise RetryableSendError(f"relay refused our login: {_reply_text(exc.smtp_code, exc.smtp_error)}") from None
    except smtplib.SMTPResponseException as exc:
        raise _classify(exc.smtp_code, exc.smtp_error, "relay error") from None
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:  # OSError covers timeouts and refusals
        raise RetryableSendError(f"cannot reach relay {config.host}:{config.port}: {exc}") from None


class EmailConnector:
    """The outbox's way to send email: build the MIME message, hand it to the relay, return its Message-ID."""

    kind: ClassVar[str] = "email"

    def __init__(self, settings: dict[str, Any]) -> None:
        self.relay_url = str(settings.get("SMTP_RELAY_URL") or "")
        self.domain = str(settings.get("MAIL_DOMAIN") or "localhost")

    def send(self, message: OutboundMessage) -> str:
        try:
            config = RelayConfig.from_url(self.relay_url)
        except ValueError as exc:
            raise RetryableSendError(str(exc)) from None  # a configuration fix will let it through
        if not message.channel_address:
            raise PermanentSendError("the email channel has no address to send from")
        mail = build_message(message, domain=self.domain)
        send_mail(config, mail, message.channel_address, [message.recipient.value])
        return str(mail["Message-ID"])
