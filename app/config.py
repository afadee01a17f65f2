"""Settings from environment variables; every one has an embedded default so `make run` just works."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = Path(os.environ.get("SWITCHBOARD_INSTANCE", ROOT / "instance"))


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _secret_key() -> str:
    """Use SECRET_KEY, else a key generated once and kept in instance/ so sessions survive restarts."""
    if key := os.environ.get("SECRET_KEY"):
        return key
    path = INSTANCE_DIR / "secret_key"
    if path.exists():
        return path.read_text().strip()
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


def load_config() -> dict[str, Any]:
    """Read the environment into a Flask config mapping."""
    env = os.environ.get
    return {
        "HOST": env("HOST", "127.0.0.1"),
        "PORT": int(env("PORT", "5000")),
        "SECRET_KEY": _secret_key(),
        "DATABASE_URL": env("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'switchboard.db'}"),
        "REDIS_URL": env("REDIS_URL") or None,
        "PUBLIC_URL": env("PUBLIC_URL", "http://127.0.0.1:5000").rstrip("/"),
        "INSTANCE_DIR": str(INSTANCE_DIR),
        "ATTACHMENTS_DIR": env("ATTACHMENTS_DIR", str(INSTANCE_DIR / "attachments")),
        # fsync each stored file before its row commits: by default only where commits are fsynced themselves
        # (PostgreSQL). SQLite runs WAL with synchronous=NORMAL: a commit survives the process crashing, not
        # the machine losing power, and files written to the page cache give exactly that guarantee too.
        "FSYNC_FILES": _env_bool("FSYNC_FILES", False) if env("FSYNC_FILES") else None,
        "MAX_CONTENT_LENGTH": int(env("MAX_REQUEST_BYTES", str(10 * 1024 * 1024))),
        "MAX_MESSAGE_CHARS": int(env("MAX_MESSAGE_CHARS", "100000")),
        # Files an agent attaches to one reply or note (the reply endpoint lifts its request limit to match).
        "REPLY_ATTACHMENTS_MAX_FILES": int(env("REPLY_ATTACHMENTS_MAX_FILES", "10")),
        "REPLY_ATTACHMENT_MAX_BYTES": int(env("REPLY_ATTACHMENT_MAX_BYTES", str(10 * 1024 * 1024))),
        # 15 MiB of files is about 20.5 MB once base64-encoded in a mail: under the usual 25 MB relay limit.
        "REPLY_ATTACHMENTS_MAX_TOTAL_BYTES": int(env("REPLY_ATTACHMENTS_MAX_TOTAL_BYTES", str(15 * 1024 * 1024))),
        "REPLY_ATTACHMENT_TYPES": env(
            "REPLY_ATTACHMENT_TYPES",
            "image/png,image/jpeg,image/gif,image/webp,image/heic,image/tiff,image/bmp,audio/*,video/*,"
            "application/pdf,text/plain,text/csv,text/calendar,text/vcard,text/x-vcard,application/rtf,"
            "application/json,application/xml,text/xml,application/zip,application/x-zip-compressed,"
            "application/msword,application/vnd.ms-excel,application/vnd.ms-powerpoint,"
            "application/vnd.openxmlformats-officedocument.*,application/vnd.oasis.opendocument.*",
        ),
        "SMTP_LISTEN": env("SMTP_LISTEN", "127.0.0.1:2525"),
        "SMTP_RELAY_URL": env("SMTP_RELAY_URL", "smtp://127.0.0.1:25"),
        "SMTP_MAX_MESSAGE_BYTES": int(env("SMTP_MAX_MESSAGE_BYTES", str(25 * 1024 * 1024))),
        "MAIL_DOMAIN": env("MAIL_DOMAIN", "switchboard.localhost"),
        "EMAIL_REPLY_LANGUAGES": env("EMAIL_REPLY_LANGUAGES", "en,pl"),
        "TWILIO_ACCOUNT_SID": env("TWILIO_ACCOUNT_SID", ""),
        "TWILIO_AUTH_TOKEN": env("TWILIO_AUTH_TOKEN", ""),
        "TWILIO_API_BASE": env("TWILIO_API_BASE") or None,
        "TWILIO_MEDIA_MAX_BYTES": int(env("TWILIO_MEDIA_MAX_BYTES", str(5 * 1024 * 1024))),
        "TWILIO_MEDIA_TYPES": env(
            "TWILIO_MEDIA_TYPES", "image/*,audio/*,video/*,application/pdf,text/vcard,text/x-vcard"
        ),
        "DEFAULT_PHONE_REGION": env("DEFAULT_PHONE_REGION", "US"),
        "ORG_TIMEZONE": env("ORG_TIMEZONE", "UTC"),
        "ADMIN_EMAIL": env("ADMIN_EMAIL", "admin@switchboard.localhost"),
        "ADMIN_PASSWORD": env("ADMIN_PASSWORD") or None,
        # Reopen a resolved conversation when the customer writes again within this many days.
        "REOPEN_WINDOW_DAYS": int(env("REOPEN_WINDOW_DAYS", "7")),
        # Embedded mode runs the outbox worker and the SMTP listener inside the web process.
        "EMBEDDED_WORKER": _env_bool("EMBEDDED_WORKER", True),
        "EMBEDDED_SMTP": _env_bool("EMBEDDED_SMTP", True),
        "OUTBOX_POLL_SECONDS": float(env("OUTBOX_POLL_SECONDS", "1.0")),
        "OUTBOX_MAX_ATTEMPTS": int(env("OUTBOX_MAX_ATTEMPTS", "8")),
        # Spooled inbound mail that fails to process is retried (with the outbox's backoff), then kept as failed.
        "MAIL_SPOOL_MAX_ATTEMPTS": int(env("MAIL_SPOOL_MAX_ATTEMPTS", "8")),
        # Processed spool rows are kept this long (what became of each mail), then pruned by the worker.
        "MAIL_SPOOL_RETENTION_DAYS": float(env("MAIL_SPOOL_RETENTION_DAYS", "30")),
        "OUTBOX_BACKOFF_BASE_SECONDS": float(env("OUTBOX_BACKOFF_BASE_SECONDS", "5")),
        "OUTBOX_BACKOFF_MAX_SECONDS": float(env("OUTBOX_BACKOFF_MAX_SECONDS", "3600")),
        "LOGIN_RATE_LIMIT": env("LOGIN_RATE_LIMIT", "10 per minute"),
        "RATELIMIT_ENABLED": _env_bool("RATELIMIT_ENABLED", True),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _env_bool("SESSION_COOKIE_SECURE", False),
        "TESTING": False,
    }
