"""Compute a mergeable calculator over partitions of opportunities, in one process or on Dask.

A result that is a sum (reports, the weighted forecast, Monte Carlo totals...) has
``merge``: computed on disjoint sets of opportunities and merged, it equals the result on
all of them. So the records are split by opportunity id with the stable hash
:func:`~pipelinekit.calculators.partition_of` (every event of one opportunity in one
partition), each partition is ingested into its own :class:`~pipelinekit.History` and
computed, and the results are merged.

- :func:`compute_in_process` is **the reference**: plain Python in one process, one
  :meth:`History.from_records <pipelinekit.History.from_records>` over every record, then
  :func:`~pipelinekit.calculators.compute_partitioned` over
  :meth:`History.partition <pipelinekit.History.partition>`. No Dask needed.
- :func:`compute_on_dask` does the same on Dask (the ``dask`` extra:
  ``pip install 'pipelinekit[dask]'``): records are shuffled to their partition, ingestion
  and computation run on the workers, and results are merged in a tree. It returns exactly
  what :func:`compute_in_process` returns for the same records (tested on a real
  multi-process cluster), with one documented exception: ``event_id`` de-duplication.

``event_id`` de-duplication happens inside each partition. It is exact whenever the
records that share an ``event_id`` share an opportunity id, which is always the case for
true duplicates (equal content includes ``opportunity_id``). An ``event_id`` reused by two
*different* opportunities is a conflict that the single-process path reports
(:class:`~pipelinekit.errors.DuplicateEventError`, or a rejection in lenient mode) but the
distributed path only sees when both opportunities hash to the same partition.

This module is not imported by ``import pipelinekit``; Dask is imported only when
:func:`compute_on_dask` runs. See ``docs/scaling.md`` for the model, the Dask recipe and a
Spark recipe.

Example:
    >>> from pipelinekit import demo, schemes
    >>> from pipelinekit.distributed import compute_in_process, compute_on_dask
    >>> from pipelinekit.reports.funnel import FunnelConversion
    >>> records = demo.demo_records(opportunities=40, seed=1)
    >>> args = dict(scheme=schemes.get("salesforce"), as_of="2024-12-31T00:00:00Z")
    >>> whole = compute_in_process(FunnelConversion(), records, **args)
    >>> whole == compute_on_dask(FunnelConversion(), records, partitions=4, **args)
    True
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, tzinfo
from decimal import Decimal
from functools import reduce
from itertools import accumulate
from typing import Any, Literal, TypeVar, overload

from pipelinekit._time import Instant, instant, time_zone
from pipelinekit.calculators import Calculator, Mergeable, compute_partitioned, partition_of
from pipelinekit.errors import ArgumentError, DuplicateEventError, RecordError
from pipelinekit.history import Duplicate, History, IngestReport, Rejection
from pipelinekit.stages import StageScheme

__all__ = ["RECORDS_PER_PARTITION", "compute_in_process", "compute_on_dask", "merge_ingest"]

M = TypeVar("M", bound=Mergeable)

RECORDS_PER_PARTITION = 10_000
"""Records per partition when :func:`compute_on_dask` is given a plain iterable and no
``partitions`` (at least one partition)."""

_SPLIT_EVERY = 4
"""How many results one merge task of the tree reduction combines."""

Located = tuple[int, Any]
"""A record with its position: ``(position in its input partition, record)``."""


# -- the reference ---------------------------------------------------------------------------


@overload
def compute_in_process(
    calculator: Calculator[M],
    records: Iterable[Mapping[str, Any]],
    *,
    scheme: StageScheme,
    as_of: Instant,
    partitions: int = ...,
    mode: Literal["strict"] = ...,
    assume_tz: tzinfo | str | None = ...,
) -> M: ...


@overload
def compute_in_process(
    calculator: Calculator[M],
    records: Iterable[Mapping[str, Any]],
    *,
    scheme: StageScheme,
    as_of: Instant,
    partitions: int = ...,
    mode: Literal["lenient"],
    assume_tz: tzinfo | str | None = ...,
) -> tuple[M, IngestReport]: ...


def compute_in_process(
    calculator: Calculator[M],
    records: Iterable[Mapping[str, Any]],
    *,
    scheme: StageScheme,
    as_of: Instant,
    partitions: int = 1,
    mode: Literal["strict", "lenient"] = "strict",
    assume_tz: tzinfo | str | None = None,
) -> M | tuple[M, IngestReport]:
    """The single-process reference for :func:`compute_on_dask`.

    Ingests every record into one :class:`~pipelinekit.History`, splits it with
    :meth:`History.partition <pipelinekit.History.partition>` and merges the per-partition
    results with :func:`~pipelinekit.calculators.compute_partitioned`. For a mergeable
    result the answer does not depend on ``partitions``.

    Args:
        calculator: a calculator whose result has ``merge``.
        records: plain-dict records (the format of ``History.from_records``).
        scheme: the stage scheme.
        as_of: the instant to compute at.
        partitions: how many partitions to compute and merge (>= 1).
        mode: ``"strict"`` raises at a bad record; ``"lenient"`` sets bad records aside.
        assume_tz: the zone for timestamps that carry none (a tzinfo or an IANA name).

    Returns:
        The merged result; in lenient mode ``(result, ingest)`` where ``ingest`` is the
        :class:`~pipelinekit.history.IngestReport` of every record (indices are positions
        in ``records``).

    Raises:
        ArgumentError: a bad argument, named in ``.argument``.
        RecordError: (strict mode) a bad record.

    Example:
        >>> from pipelinekit import demo, schemes
        >>> from pipelinekit.reports.lead_requirement import LeadRequirement
        >>> records = demo.demo_records(opportunities=30, seed=2) + [{"type": "oops"}]
        >>> result, ingest = compute_in_process(
        ...     LeadRequirement(target=100_000), records, scheme=schemes.get("salesforce"),
        ...     as_of="2024-12-31T00:00:00Z", partitions=3, mode="lenient")
        >>> ingest.total - ingest.applied, ingest.rejected[0].index == len(records) - 1
        (1, True)
    """
    when = instant(as_of, argument="as_of")
    history = History.from_records(records, scheme=scheme, mode=mode, assume_tz=assume_tz)
    result = compute_partitioned(calculator, history.partition(partitions), as_of=when)
    return (result, history.ingest) if mode == "lenient" else result


# -- Dask --------------------------------------------------------------------------------------


@overload
def compute_on_dask(
    calculator: Calculator[M],
    records: Any,
    *,
    scheme: StageScheme,
    as_of: Instant,
    partitions: int | None = ...,
    mode: Literal["strict"] = ...,
    assume_tz: tzinfo | str | None = ...,
    client: Any = ...,
) -> M: ...


@overload
def compute_on_dask(
    calculator: Calculator[M],
    records: Any,
    *,
    scheme: StageScheme,
    as_of: Instant,
    partitions: int | None = ...,
    mode: Literal["lenient"],
    assume_tz: tzinfo | str | None = ...,
    client: Any = ...,
) -> tuple[M, IngestReport]: ...


def compute_on_dask(
    calculator: Calculator[M],
    records: Any,
    *,
    scheme: StageScheme,
    as_of: Instant,
    partitions: int | None = None,
    mode: Literal["strict", "lenient"] = "strict",
    assume_tz: tzinfo | str | None = None,
    client: Any = None,
) -> M | tuple[M, IngestReport]:
    """Compute a mergeable calculator on Dask: shuffle by opportunity, ingest and compute on
    the workers, merge in a tree.

    How the work is laid out (one task graph, computed once):

    1. **Shuffle.** A ``dask.bag.Bag`` is split task by task: each input partition ``i``
       is cut into ``partitions`` lists by ``partition_of(opportunity_id, partitions)``,
       each record kept with its position in partition ``i``, plus the partition's length.
       Output partition ``k`` takes list ``k`` of every input partition, in input order,
       so each record moves once, and the lengths give every record its **global index**
       (its position in the whole bag) without a separate counting pass. A plain iterable
       is already on the client, so it is split there (no shuffle tasks) and sent to the
       cluster as one piece per partition.
    2. **Ingest and compute.** Each output partition builds its own
       :class:`~pipelinekit.History` from its records in global order (so time ties keep
       input order, as in one process) and runs ``calculator.compute``; only the result
       and the ingest accounting leave the worker.
    3. **Merge.** Results are merged in a tree, ``4`` at a time, always in partition
       order (``merge`` is associative), together with the ingest reports.

    Args:
        calculator: a calculator whose result has ``merge``; it and ``scheme`` must pickle
            (the built-in calculators do).
        records: a ``dask.bag.Bag`` of record dicts, or any iterable of record dicts.
        scheme: the stage scheme.
        as_of: the instant to compute at.
        partitions: how many partitions of opportunities (>= 1). Default: the bag's
            ``npartitions``; for an iterable one per :data:`RECORDS_PER_PARTITION` records.
        mode: ``"strict"`` raises at a bad record; ``"lenient"`` sets bad records aside.
        assume_tz: the zone for timestamps that carry none (a tzinfo or an IANA name).
        client: a ``distributed.Client`` to compute on; default: Dask's current
            scheduler (the default client if one exists, else local threads).

    Returns:
        The merged result, equal to :func:`compute_in_process` on the same records. In
        lenient mode ``(result, ingest)``: an :class:`~pipelinekit.history.IngestReport`
        whose ``total``/``applied`` add up over partitions and whose duplicates and
        rejections (each with its record and error) carry global indices: positions in
        the iterable, or in the bag in partition order.

    Raises:
        ImportError: Dask is not installed.
        ArgumentError: a bad argument, named in ``.argument``.
        RecordError: (strict mode) a bad record, with its global index. When several
            records are bad, which one is reported may differ from the single-process
            path (partitions fail independently).

    Example:
        >>> from pipelinekit import demo, schemes
        >>> from pipelinekit.reports.velocity import Velocity
        >>> records = demo.demo_records(opportunities=30, seed=5)
        >>> records[3] = {**records[3], "at": "not a date"}
        >>> result, ingest = compute_on_dask(
        ...     Velocity(), records, scheme=schemes.get("salesforce"),
        ...     as_of="2024-12-31T00:00:00Z", partitions=3, mode="lenient")
        >>> ingest.total == len(records), ingest.accounted, ingest.rejected[0].index
        (True, True, 3)
    """
    try:
        import dask
        import dask.bag
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("compute_on_dask needs Dask: pip install 'pipelinekit[dask]'") from exc

    when = instant(as_of, argument="as_of")
    _check(calculator, scheme, mode, partitions)
    zone = time_zone(assume_tz, argument="assume_tz")  # a bad zone fails here, not on a worker
    lib: Any = dask  # Dask's top level is only partly typed
    delayed = lib.delayed
    config = delayed((calculator, scheme, when, mode, zone), traverse=False)

    if isinstance(records, lib.bag.Bag):
        bag: Any = records
        n = bag.npartitions if partitions is None else partitions
        splits = [delayed(_split, nout=n + 1)(part, n) for part in bag.to_delayed()]
        offsets = delayed(_offsets)([s[n] for s in splits])
        tasks = [delayed(_compute_part)([s[k] for s in splits], offsets, config) for k in range(n)]
    else:
        if isinstance(records, str | bytes | Mapping) or not isinstance(records, Iterable):
            raise ArgumentError(
                "records",
                f"expected a dask.bag.Bag or an iterable of record dicts, "
                f"got {type(records).__name__}",
            )
        given = records if isinstance(records, list) else list(records)
        n = (
            partitions
            if partitions is not None
            else max(1, -(-len(given) // RECORDS_PER_PARTITION))
        )
        buckets = _split(given, n)[:n]
        pieces: Sequence[Any] = (
            client.scatter(list(buckets))
            if client is not None
            else [delayed(b, traverse=False) for b in buckets]
        )
        tasks = [delayed(_compute_part)([piece], [0], config) for piece in pieces]

    while len(tasks) > 1:
        tasks = [
            delayed(_merge_parts)(tasks[i : i + _SPLIT_EVERY])
            for i in range(0, len(tasks), _SPLIT_EVERY)
        ]
    if client is not None:
        result, ingest = client.compute(tasks[0]).result()
    else:
        ((result, ingest),) = lib.compute(tasks[0])
    return (result, ingest) if mode == "lenient" else result


def merge_ingest(a: IngestReport, b: IngestReport) -> IngestReport:
    """The accounting of two disjoint sets of records whose indices share one numbering.

    Counts add; duplicates and rejections are concatenated in index order.

    Example:
        >>> a = IngestReport(total=3, applied=3)
        >>> merge_ingest(a, IngestReport(total=2, applied=1)).applied
        4
    """
    return IngestReport(
        total=a.total + b.total,
        applied=a.applied + b.applied,
        duplicates=tuple(sorted((*a.duplicates, *b.duplicates), key=lambda d: d.index)),
        rejected=tuple(sorted((*a.rejected, *b.rejected), key=lambda r: r.index)),
    )


# -- tasks (run on the workers; module-level so they pickle by reference) ----------------------


def _check(calculator: object, scheme: object, mode: str, partitions: int | None) -> None:
    if not callable(getattr(calculator, "compute", None)):
        raise ArgumentError(
            "calculator", f"expected an object with compute(history, *, as_of), got {calculator!r}"
        )
    if not isinstance(scheme, StageScheme):
        raise ArgumentError("scheme", f"expected a StageScheme, got {type(scheme).__name__}")
    if mode not in ("strict", "lenient"):
        raise ArgumentError("mode", f"expected 'strict' or 'lenient', got {mode!r}")
    if partitions is not None:
        partition_of("", partitions)  # raises ArgumentError('partitions')


def _key(record: object, partitions: int) -> int:
    """The partition of a record; records without a usable id all go to partition 0 (they
    are rejected there, as they would be in one process)."""
    oid = record.get("opportunity_id") if isinstance(record, Mapping) else None
    if isinstance(oid, int | float | Decimal) and not isinstance(oid, bool):
        oid = str(oid)  # the event model coerces numbers to str the same way
    return partition_of(oid, partitions) if isinstance(oid, str) else 0


def _split(records: Iterable[Any], partitions: int) -> tuple[Any, ...]:
    """``partitions`` lists of ``(position, record)`` by opportunity, then the count."""
    buckets: list[list[Located]] = [[] for _ in range(partitions)]
    count = 0
    for record in records:
        buckets[_key(record, partitions)].append((count, record))
        count += 1
    return (*buckets, count)


def _offsets(lengths: list[int]) -> list[int]:
    return [0, *accumulate(lengths)][:-1]


def _compute_part(
    pieces: list[list[Located]],
    offsets: list[int],
    config: tuple[Calculator[M], StageScheme, datetime, Literal["strict", "lenient"], Any],
) -> tuple[M, IngestReport]:
    """Ingest one partition's records (in global order) and compute its result."""
    calculator, scheme, when, mode, assume_tz = config
    index = [
        offset + pos for piece, offset in zip(pieces, offsets, strict=True) for pos, _ in piece
    ]
    records = [record for piece in pieces for _, record in piece]
    try:
        history = History.from_records(records, scheme=scheme, mode=mode, assume_tz=assume_tz)
    except RecordError as exc:
        if exc.index is None:
            raise
        raise _relocated(exc, index) from None
    ingest = history.ingest
    globalised = IngestReport(
        total=ingest.total,
        applied=ingest.applied,
        duplicates=tuple(
            Duplicate(index=index[d.index], event_id=d.event_id, first_index=index[d.first_index])
            for d in ingest.duplicates
        ),
        rejected=tuple(
            Rejection(index=index[r.index], record=r.record, error=_relocated(r.error, index))
            for r in ingest.rejected
        ),
    )
    return calculator.compute(history, as_of=when), globalised


_FIRST_USED = re.compile(r"first used by record (\d+)")


def _relocated(error: RecordError, index: list[int]) -> RecordError:
    """The error with its partition-local record positions turned into global ones."""
    where = None if error.index is None else index[error.index]
    moved = error.located(index=where)
    if isinstance(error, DuplicateEventError):  # its reason names the first record too
        moved.reason = _FIRST_USED.sub(
            lambda m: f"first used by record {index[int(m.group(1))]}", moved.reason
        )
        moved = moved.located(index=where)  # rebuild the message from the new reason
    return moved


def _merge_parts(parts: list[tuple[M, IngestReport]]) -> tuple[M, IngestReport]:
    """Merge results and accounting left to right (partition order)."""
    return reduce(lambda a, b: (a[0].merge(b[0]), merge_ingest(a[1], b[1])), parts)
