"""Engines: how a :class:`~pipelinekit.History` stores, orders and replays its events.

A History is a thin facade over a *store* (the :class:`Store` protocol below) built by an
engine. :mod:`pipelinekit.engine.reference` is the reference engine: pure Python on
pydantic-core, always available, and the definition of every answer and error.

Example:
    >>> import pipelinekit as pk
    >>> h = pk.History.from_records(
    ...     [{"type": "opened", "opportunity_id": "o-1", "at": "2024-01-05T10:00:00Z",
    ...       "stage": "lead"}], scheme=pk.schemes.get("vtiger-lead-funnel"))
    >>> isinstance(h._store, Store)
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pipelinekit._rows import Row
from pipelinekit.engine.bulk import bulk_work
from pipelinekit.stages import StageScheme

if TYPE_CHECKING:  # pragma: no cover
    from pipelinekit.pipeline import Pipeline

__all__ = ["Store", "bulk_work"]


@runtime_checkable
class Store(Protocol):
    """What a History needs of its engine's storage: the events in time order (ties in
    input order), prefixes, subsets and the snapshot after the last event."""

    scheme: StageScheme

    def __len__(self) -> int:
        """The number of events."""
        ...

    def rows(self) -> Sequence[Row]:
        """The events as rows (:mod:`pipelinekit._rows`), in order."""
        ...

    @property
    def start(self) -> datetime | None:
        """The first event's instant (``None`` when empty)."""
        ...

    @property
    def end(self) -> datetime | None:
        """The last event's instant (``None`` when empty)."""
        ...

    def opportunity_ids(self) -> tuple[str, ...]:
        """The opportunities' ids in order of opening."""
        ...

    def cut(self, when: datetime) -> int:
        """How many events happened at or before ``when``."""
        ...

    def prefix(self, cut: int) -> Store:
        """The store of the first ``cut`` events."""
        ...

    def select(self, ids: set[str]) -> Store:
        """The store of the given opportunities' events."""
        ...

    def split(self, partitions: int) -> Sequence[Store]:
        """The events split by :func:`~pipelinekit.partitions.partition_of`."""
        ...

    def snapshot(self) -> Pipeline:
        """Every opportunity's state after the last event."""
        ...
