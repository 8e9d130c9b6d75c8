"""How the records of a History were accounted for: applied, duplicate or rejected.

Every engine that builds a History (see :mod:`pipelinekit.engine`) reports its input
records in one :class:`IngestReport`; lenient mode sets bad records aside as
:class:`Rejection` entries and repeated ones as :class:`Duplicate` entries.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from pipelinekit.errors import ArgumentError, DuplicateEventError, RecordError, TransitionError
from pipelinekit.events import abbreviated
from pipelinekit.results import html_table, text_table
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

    @property
    def rule(self) -> str:
        """The rule the record broke: a move's rule (``"forward"``, ``"reopen"``,
        ``"not-opened"``...), ``"duplicate-event-id"`` for an ``event_id`` reused with other
        content, or ``"invalid"`` for a malformed record."""
        if isinstance(self.error, TransitionError):
            return self.error.rule
        if isinstance(self.error, DuplicateEventError):
            return "duplicate-event-id"
        return "invalid"


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
        """One row per record set aside: index, status, rule, field and reason.

        Example:
            >>> import pipelinekit as pk
            >>> h = pk.History.from_records([{"type": "stage_changed", "opportunity_id": "o-9",
            ...     "at": "2024-01-06T10:00:00Z", "stage": "closed-won"}],
            ...     scheme=pk.schemes.get("salesforce"), mode="lenient")
            >>> h.ingest.to_records()[0]["rule"]
            'not-opened'
        """
        rows: list[dict[str, Any]] = [
            {
                "index": d.index,
                "status": "duplicate",
                "rule": "duplicate",
                "field": "event_id",
                "reason": f"repeats record {d.first_index} (event_id {d.event_id!r})",
            }
            for d in self.duplicates
        ]
        rows += [
            {
                "index": r.index,
                "status": "rejected",
                "rule": r.rule,
                "field": r.field,
                "reason": r.reason,
            }
            for r in self.rejected
        ]
        return sorted(rows, key=lambda row: row["index"])

    def summary(self) -> list[dict[str, Any]]:
        """The records set aside, counted by rule and field (most frequent first), each
        with the first such record's index and reason.

        Example:
            >>> import pipelinekit as pk
            >>> recs = [{"type": "opened", "opportunity_id": f"o-{i}", "stage": "prospecting",
            ...          "at": "2024-01-05T10:00:00Z", "amount": "-1" if i < 2 else "5"}
            ...         for i in range(3)]
            >>> h = pk.History.from_records(recs, scheme=pk.schemes.get("salesforce"),
            ...                             mode="lenient")
            >>> [(r["rule"], r["field"], r["records"], r["first"]) for r in h.ingest.summary()]
            [('invalid', 'amount', 2, 0)]
        """
        groups: dict[tuple[str, str, str | None], dict[str, Any]] = {}
        for row in self.to_records():
            key = (row["status"], row["rule"], row["field"])
            group = groups.get(key)
            if group is None:
                groups[key] = {
                    "status": row["status"],
                    "rule": row["rule"],
                    "field": row["field"],
                    "records": 1,
                    "first": row["index"],
                    "reason": row["reason"],
                }
            else:
                group["records"] += 1
        return sorted(groups.values(), key=lambda g: (-g["records"], g["first"]))

    def _title(self) -> str:
        return (
            f"{self.total} records: {self.applied} applied, {len(self.duplicates)} "
            f"duplicates, {len(self.rejected)} rejected"
        )

    def _repr_html_(self) -> str:
        return html_table(self.to_records(), title=self._title())

    def __str__(self) -> str:
        """The counts, then what was set aside by rule (:meth:`summary`); every record is
        in :meth:`to_records`."""
        if not self.duplicates and not self.rejected:
            return self._title()
        return text_table(self.summary(), title=self._title())

    def __repr__(self) -> str:
        return (
            f"IngestReport(total={self.total}, applied={self.applied}, "
            f"duplicates={len(self.duplicates)}, rejected={len(self.rejected)})"
        )

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
