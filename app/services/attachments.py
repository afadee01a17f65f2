"""Files on disk, addressed by SHA-256 so identical files are stored once."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from flask import current_app

from app.extensions import db
from app.models import Attachment
from connectors.base import Attachment as FileItem


def storage_dir() -> Path:
    return Path(current_app.config["ATTACHMENTS_DIR"])


def path_for(sha256: str) -> Path:
    """Return where the file with this hash lives (it may not exist)."""
    if len(sha256) != 64 or not all(ch in "0123456789abcdef" for ch in sha256):
        raise ValueError("not a SHA-256 hex digest")
    return storage_dir() / sha256[:2] / sha256[2:4] / sha256


def fsync_files() -> bool:
    """Whether stored files are fsynced: FSYNC_FILES, else as durable as the database's commits."""
    configured = current_app.config.get("FSYNC_FILES")
    return db.dialect != "sqlite" if configured is None else bool(configured)


def store_bytes(data: bytes) -> str:
    """Write ``data`` (write, fsync when configured, atomic rename) and return its SHA-256."""
    digest = hashlib.sha256(data).hexdigest()
    target = path_for(digest)
    if target.exists():
        return digest
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if fsync_files():
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest


def read_bytes(sha256: str) -> bytes:
    return path_for(sha256).read_bytes()


def stored_attachment(item: FileItem, sha256: str | None = None) -> Attachment:
    """Store ``item``'s bytes (unless ``sha256`` says they are stored) and return the Attachment row that
    points at them (for the caller's message)."""
    return Attachment(
        filename=item.filename,
        content_type=item.content_type,
        size=len(item.data),
        sha256=sha256 or store_bytes(item.data),
        content_id=item.content_id,
        inline=item.inline,
    )
