"""Engines: how a :class:`~pipelinekit.History` stores, orders and replays its events.

A History is a thin facade over a *store* (the :class:`Store` protocol below) built by an
engine. :mod:`pipelinekit.engine.reference` is the reference engine: pure Python on
pydantic-core, always available, and the definition of every answer and error.
:mod:`pipelinekit.engine.columnar` is the columnar engine of the ``fast`` extra (polars):
used automatically when polars is installed, for every input it can prove valid; anything
else goes through the reference engine, so answers and errors are the same either way.

The environment variable ``PIPELINEKIT_ENGINE`` chooses: ``auto`` (the default: columnar
when polars imports and the input has at least :data:`COLUMNAR_FROM` records, else
reference), ``reference`` (always the reference engine: to compare the two, or to test a
setup without the extra) or ``columnar`` (whatever the size). It is read at each
ingestion.

Example:
    >>> import pipelinekit as pk
    >>> h = pk.History.from_records(
    ...     [{"type": "opened", "opportunity_id": "o-1", "at": "2024-01-05T10:00:00Z",
    ...       "stage": "lead"}], scheme=pk.schemes.get("vtiger-lead-funnel"))
    >>> isinstance(h._store, Store)
    True
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pipelinekit._rows import Row
from pipelinekit.engine.bulk import bulk_work
from pipelinekit.errors import ArgumentError
from pipelinekit.ingestion import IngestReport, Mode
from pipelinekit.stages import StageScheme

if TYPE_CHECKING:  # pragma: no cover
    from pipelinekit.pipeline import Pipeline

__all__ = [
    "COLUMNAR_FROM",
    "ENGINE_VARIABLE",
    "FrameKind",
    "Store",
    "bulk_work",
    "engine",
    "frame_records",
    "ingest_frame",
    "ingest_records",
]

ENGINE_VARIABLE = "PIPELINEKIT_ENGINE"
"""The environment variable that chooses the engine (``auto`` or ``reference``)."""

Engine = Literal["columnar", "reference"]


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


COLUMNAR_FROM = 10_000
"""Records from which ``auto`` tries the columnar engine: below, polars' fixed cost per
call (about 15 ms for a small history) outweighs what it saves."""


def engine(size: int | None = None) -> Engine:
    """The engine an ingestion of ``size`` records tries first.

    :data:`ENGINE_VARIABLE` decides: ``auto`` (or unset) gives ``"columnar"`` when polars
    imports and there are at least :data:`COLUMNAR_FROM` records (or ``size`` is not
    given), else ``"reference"``; ``reference`` always gives ``"reference"``;
    ``columnar`` gives ``"columnar"`` whatever the size (for tests and benchmarks).

    Raises:
        ArgumentError: (naming ``PIPELINEKIT_ENGINE``) another value, or ``columnar``
            without polars.

    Example:
        >>> engine(10) in ("columnar", "reference")
        True
    """
    choice = os.environ.get(ENGINE_VARIABLE, "auto").strip().lower() or "auto"
    if choice not in ("auto", "reference", "columnar"):
        raise ArgumentError(
            ENGINE_VARIABLE, f"expected 'auto', 'reference' or 'columnar', got {choice!r}"
        )
    if choice == "reference" or (choice == "auto" and size is not None and size < COLUMNAR_FROM):
        return "reference"  # (without importing polars)
    if not _polars_imports():
        if choice == "columnar":
            raise ArgumentError(
                ENGINE_VARIABLE, "'columnar' needs polars: pip install 'pipelinekit[fast]'"
            )
        return "reference"
    if choice == "auto" and size is not None and size < COLUMNAR_FROM:
        return "reference"
    return "columnar"


def _polars_imports() -> bool:
    try:
        import polars  # noqa: F401
    except ImportError:
        return False
    return True


def ingest_records(
    records: list[Any], scheme: StageScheme, mode: Mode, assume_tz: tzinfo | None
) -> tuple[Store, IngestReport]:
    """Build a store from plain-dict records: through the columnar engine when it is on
    and can prove every record valid, else through the reference engine."""
    from pipelinekit.engine.reference import RowStore

    if engine(len(records)) == "columnar":
        from pipelinekit.engine import columnar

        built = columnar.from_records(records, scheme)
        if built is not None:
            return built
    return RowStore.from_records(records, scheme, mode, assume_tz)


FrameKind = Literal["polars", "pandas", "arrow"]


def ingest_frame(
    frame: Any, kind: FrameKind, scheme: StageScheme, mode: Mode, assume_tz: tzinfo | None
) -> tuple[Store, IngestReport]:
    """Build a store from a DataFrame or Arrow table with one column per record field (a
    null, NaN or NaT is a missing value): columnar when the engine is on and can prove
    every row valid, else the reference engine on the rows as records (every column a key
    of every record; see :mod:`pipelinekit.records` for missing values)."""
    from pipelinekit.engine.reference import RowStore

    if engine(len(frame)) == "columnar":
        from pipelinekit.engine import columnar

        built = columnar.from_frame(frame, kind, scheme)
        if built is not None:
            return built
    return RowStore.from_records(frame_records(frame, kind), scheme, mode, assume_tz)


def frame_records(frame: Any, kind: FrameKind) -> list[dict[Any, Any]]:
    """The rows of a frame as records, column by column (every column a key of every
    record, values as the frame library gives them to Python).

    Example:
        >>> import polars as pl
        >>> frame_records(pl.DataFrame({"type": ["opened"], "stage": [None]}), "polars")
        [{'type': 'opened', 'stage': None}]
    """
    if kind == "pandas":
        names = list(frame.columns)
        columns = [frame[name].tolist() for name in names]
    elif kind == "arrow":
        names = list(frame.column_names)
        columns = [frame.column(name).to_pylist() for name in names]
    else:
        names = list(frame.columns)
        columns = [column.to_list() for column in frame.iter_columns()]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
