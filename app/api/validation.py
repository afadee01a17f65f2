"""Request validation with pydantic: bad input becomes a 400/422 JSON error naming the fields."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ConfigDict, ValidationError

from app.api.errors import ApiError

M = TypeVar("M", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Any])


class Schema(BaseModel):
    """Base for request bodies: unknown fields are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _field_errors(exc: ValidationError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "body"
        fields.setdefault(location, error["msg"])
    return fields


def parse(model: type[M], data: Any) -> M:
    """Validate ``data`` against ``model``; raise a 422 ApiError listing every bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, "validation_failed", "The request has invalid fields.", _field_errors(exc)) from None


def json_body() -> Any:
    """Return the request's JSON or form body; raise 400 when it is not valid JSON."""
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return request.form.to_dict()
    data = request.get_json(silent=True)
    if data is None:
        if not request.get_data(cache=True):
            raise ApiError(400, "bad_request", "The request body is empty; send a JSON object.")
        raise ApiError(400, "bad_request", "The request body is not valid JSON.")
    return data


def validate(*, body: type[BaseModel] | None = None, query: type[BaseModel] | None = None) -> Callable[[F], F]:
    """Parse the body and/or query string into pydantic models and pass them as ``body=``/``query=``."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if body is not None:
                data = json_body()
                if not isinstance(data, dict):
                    raise ApiError(400, "bad_request", "The request body must be a JSON object.")
                kwargs["body"] = parse(body, data)
            if query is not None:
                kwargs["query"] = parse(query, request.args.to_dict())
            return view(*args, **kwargs)

        openapi = dict(getattr(view, "openapi", {}))
        openapi.update({"body": body, "query": query})
        wrapper.openapi = openapi  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


def documented(
    *, summary: str | None = None, response: type[BaseModel] | None = None, files: str | None = None
) -> Callable[[F], F]:
    """Attach an OpenAPI summary and response schema to a view (used when building openapi.json).

    ``files`` names the multipart field that may carry uploads: the body is then documented as JSON or as
    multipart/form-data with the same fields plus that one.
    """

    def decorator(view: F) -> F:
        openapi = dict(getattr(view, "openapi", {}))
        openapi.update({"summary": summary, "response": response, "files": files})
        view.openapi = openapi  # type: ignore[attr-defined]
        return view

    return decorator
