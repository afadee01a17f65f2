"""Domain errors raised by services and connectors; the web layer answers each with its ``status``."""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses, with a stable code and optional per-field reasons."""

    code = "unprocessable"
    status = 422

    def __init__(self, message: str, *, code: str | None = None, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        if code:
            self.code = code
        self.fields = fields


class NotFound(DomainError):
    code = "not_found"
    status = 404


class Conflict(DomainError):
    code = "conflict"
    status = 409


class BadRequest(DomainError):
    """Input that cannot even be read (a malformed webhook, say)."""

    code = "bad_request"
    status = 400


class Forbidden(DomainError):
    """A caller who proved no right to do this (a missing or wrong signature, say)."""

    code = "forbidden"
    status = 403


class ValidationFailed(DomainError):
    code = "validation_failed"
