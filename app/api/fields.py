"""Request input that the database can always take: ids within 64 bits, UTC datetimes, text without NUL.

A number past 64 bits can never be an id, and handing one to the driver fails (SQLite: OverflowError); a
datetime whose UTC equivalent falls outside years 1..9999 fails the same way, and so does text holding a NUL
character on PostgreSQL. All are refused at the edge: in a path such an id matches no route (404); in a body
or query string it is a 422 field error.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import AfterValidator, Field, field_validator, model_validator
from werkzeug.routing import IntegerConverter, Map

from app.api.validation import Schema

MAX_ID = 2**63 - 1


def to_utc(value: dt.datetime) -> dt.datetime:
    """Return ``value`` in UTC (a naive value is taken as UTC); raise ValueError when UTC cannot hold it."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("date out of range") from None


DbId = Annotated[int, Field(ge=1, le=MAX_ID)]
UtcDateTime = Annotated[dt.datetime, AfterValidator(to_utc)]


class BoundedIntConverter(IntegerConverter):
    """Werkzeug's ``int`` converter, capped at the largest 64-bit integer unless a rule says otherwise."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


class Input(Schema):
    """A request body: unknown fields are errors (Schema), and no text may hold a NUL character."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class Query(Input):
    """A query string: as Input, and an empty parameter (``?status=``) means the same as leaving it out."""

    @model_validator(mode="before")
    @classmethod
    def _drop_empty(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value != ""}
        return data
