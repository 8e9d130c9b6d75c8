"""How the records of a History were accounted for: applied, duplicate or rejected.

Every engine that builds a History (see :mod:`pipelinekit.engine`) reports its input
records in one :class:`IngestReport`; lenient mode sets bad records aside as
:class:`Rejection` entries and repeated ones as :class:`Duplicate` entries.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from pipelinekit.errors import ArgumentError, RecordError
from pipelinekit.events import abbreviated
from pipelinekit.results import html_table
from pipelinekit.stages import StageScheme

__all__ = ["Duplicate", "IngestReport", "Mode", "Rejection", "check_mode", "check_scheme"]

Mode = Literal["strict", "lenient"]


class Rejection(BaseModel):
    """A record set aside in lenient mode, with the error that explains why."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    index: int
    record: Any
    error: RecordError

    def __repr_args__(self) -> Iterator[tuple[str, Any]]:
        yield "index", self.index
        yield "record", _Shown(abbreviated(self.record))  # the record may be anything
        yield "error", self.error

    @property
    def reason(self) -> str:
        """What is wrong with the record."""
        return self.error.reason

    @property
    def field(self) -> str | None:
        """The offending field, when one field is to blame."""
        return self.error.field


class _Shown(str):
    """Text that stands for a value in a repr."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


class Duplicate(BaseModel):
    """A record whose ``event_id`` and content repeat an earlier record's."""

    model_config = ConfigDict(frozen=True)

    index: int
    event_id: str
    first_index: int


class IngestReport(BaseModel):
    """How the records of a History were accounted for.

    Every input record is exactly one of: applied, a duplicate, or rejected, so
    ``applied + len(duplicates) + len(rejected) == total`` always holds.

    Example:
        >>> import pipelinekit as pk
        >>> h = pk.History.from_records(
        ...     [{"type": "opened", "opportunity_id": "o-1", "at": "2024-01-05T10:00:00Z",
        ...       "stage": "prospecting", "event_id": "e1"},
        ...      {"type": "opened", "opportunity_id": "o-1", "at": "2024-01-05T10:00:00Z",
        ...       "stage": "prospecting", "event_id": "e1"},
        ...      {"type": "stage_changed", "opportunity_id": "o-2",
        ...       "at": "2024-01-06T10:00:00Z", "stage": "closed-won"}],
        ...     scheme=pk.schemes.get("salesforce"), mode="lenient")
        >>> r = h.ingest
        >>> r.total, r.applied, len(r.duplicates), len(r.rejected)
        (3, 1, 1, 1)
        >>> r.rejected[0].index, r.rejected[0].error.rule
        (2, 'not-opened')
    """

    model_config = ConfigDict(frozen=True)

    total: int
    applied: int
    duplicates: tuple[Duplicate, ...] = ()
    rejected: tuple[Rejection, ...] = ()

    def to_records(self) -> list[dict[str, Any]]:
        """One row per record set aside: index, status, field and reason."""
        rows: list[dict[str, Any]] = [
            {
                "index": d.index,
                "status": "duplicate",
                "field": "event_id",
                "reason": f"repeats record {d.first_index} (event_id {d.event_id!r})",
            }
            for d in self.duplicates
        ]
        rows += [
            {"index": r.index, "status": "rejected", "field": r.field, "reason": r.reason}
            for r in self.rejected
        ]
        return sorted(rows, key=lambda row: row["index"])

    def _repr_html_(self) -> str:
        title = (
            f"{self.total} records: {self.applied} applied, {len(self.duplicates)} "
            f"duplicates, {len(self.rejected)} rejected"
        )
        return html_table(self.to_records(), title=title)

    @property
    def accounted(self) -> bool:
        """True when every record is applied, duplicate or rejected (always, by design)."""
        return self.applied + len(self.duplicates) + len(self.rejected) == self.total


def check_mode(mode: str) -> None:
    """Refuse a mode other than ``"strict"`` or ``"lenient"``.

    Example:
        >>> check_mode("sloppy")
        Traceback (most recent call last):
        ...
        pipelinekit.errors.ArgumentError: argument 'mode': expected 'strict' or 'lenient', got ...
    """
    if mode not in ("strict", "lenient"):
        raise ArgumentError("mode", f"expected 'strict' or 'lenient', got {mode!r}")


def check_scheme(scheme: object) -> None:
    """Refuse anything but a :class:`~pipelinekit.stages.StageScheme`.

    Example:
        >>> check_scheme("salesforce")
        Traceback (most recent call last):
        ...
        pipelinekit.errors.ArgumentError: argument 'scheme': expected a StageScheme, got str; ...
    """
    if not isinstance(scheme, StageScheme):
        raise ArgumentError(
            "scheme",
            f"expected a StageScheme, got {type(scheme).__name__}; build one with "
            "StageScheme.model_validate(...) or pipelinekit.schemes.get(name)",
        )
