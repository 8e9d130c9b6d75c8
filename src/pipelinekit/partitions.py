"""Partitions: which part of a split of the opportunities holds each one's events.

:func:`partition_of` is public as ``pipelinekit.calculators.partition_of`` (and
``pipelinekit.partition_of``); it lives here, below both the History and the calculators,
so that neither imports the other.
"""

from __future__ import annotations

import zlib

from pipelinekit.errors import ArgumentError

__all__ = ["partition_of"]


def partition_of(opportunity_id: str, partitions: int) -> int:
    """The partition (0 .. partitions-1) that holds every event of ``opportunity_id``.

    A stable hash (CRC-32 of the UTF-8 id), so every process and machine agrees, unlike
    Python's salted ``hash``. Use it to split records before ingesting them in parallel.

    Example:
        >>> partition_of("o-1", 4) == partition_of("o-1", 4)
        True
        >>> 0 <= partition_of("anything", 3) < 3
        True
    """
    if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
        raise ArgumentError("partitions", f"expected an integer >= 1, got {partitions!r}")
    return zlib.crc32(opportunity_id.encode("utf-8")) % partitions
