"""The audit log: who changed what, for merges, settings and other consequential actions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, created_at, intpk, str64


class AuditLog(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_target", "target_type", "target_id"),)

    id: Mapped[intpk]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str64]
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[int | None]
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[created_at]
