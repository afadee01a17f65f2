"""Domain errors raised by services; the API maps them to 404/409/422 responses."""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses, with a stable code and optional per-field reasons."""

    code = "unprocessable"

    def __init__(self, message: str, *, code: str | None = None, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        if code:
            self.code = code
        self.fields = fields


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class ValidationFailed(DomainError):
    code = "validation_failed"
