"""Turning user-supplied instants into timezone-aware datetimes (private helpers)."""

from __future__ import annotations

from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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


def time_zone(value: object, *, argument: str) -> tzinfo | None:
    """``value`` as a tzinfo: a tzinfo as it is, an IANA name (``"Europe/Warsaw"``) as its
    ``ZoneInfo``, ``None`` as ``None``; anything else is an error naming ``argument``."""
    if value is None or isinstance(value, tzinfo):
        return value
    if isinstance(value, str):
        try:
            return ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ArgumentError(
                argument,
                f"unknown time zone {value!r}; give an IANA name such as 'Europe/Warsaw' "
                "or a tzinfo such as ZoneInfo('Europe/Warsaw')",
            ) from None
    raise ArgumentError(
        argument,
        f"expected a tzinfo such as ZoneInfo('Europe/Warsaw') or an IANA zone name, got "
        f"{type(value).__name__}",
    )
