"""Turning user-supplied instants into timezone-aware datetimes (private helpers)."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, TypeAdapter, ValidationError

from pipelinekit.errors import ArgumentError

_AWARE: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)

Instant = datetime | str
"""A timezone-aware ``datetime`` or an ISO 8601 string with an offset."""


def instant(value: Instant, *, argument: str) -> datetime:
    """Validate ``value`` as a timezone-aware instant, naming ``argument`` on failure."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ArgumentError(
                argument,
                f"{value.isoformat()} has no timezone; pass a timezone-aware datetime, "
                "e.g. datetime(2024, 1, 1, tzinfo=timezone.utc)",
            )
        return value
    try:
        return _AWARE.validate_python(value)
    except ValidationError as exc:
        msg = exc.errors(include_url=False)[0]["msg"]
        raise ArgumentError(
            argument, f"expected a timezone-aware datetime or ISO string, got {value!r} ({msg})"
        ) from None
