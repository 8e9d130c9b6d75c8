"""Bulk work: the cyclic garbage collector paused while millions of objects are made.

Ingestion, snapshots and calculators wrap their bulk work in :func:`bulk_work`.

Example:
    >>> import gc
    >>> from pipelinekit.engine.bulk import bulk_work
    >>> with bulk_work():
    ...     gc.isenabled()
    False
    >>> gc.isenabled()
    True
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["bulk_work"]


@contextmanager
def bulk_work() -> Iterator[None]:
    """Pause the cyclic garbage collector around bulk ingestion and replay.

    Ingestion creates millions of small acyclic objects (events, drafts, snapshots); the
    cyclic collector finds nothing to free among them, yet each of its full passes walks
    the whole heap, the caller's records included. Measured at 200k events it more than
    doubled the time of ``from_records`` (see docs/performance.md). Reference counting
    still frees everything as usual; only the cycle detector waits, and the caller's
    setting is restored on exit (if it was already disabled, it stays disabled).

    On exit the objects created meanwhile are moved to the oldest generation first
    (``gc.freeze()`` then ``gc.unfreeze()``, which splices lists and walks nothing).
    Otherwise they would all still count as young, and the first allocation after
    ``gc.enable()`` would run a young collection over every one of them: about 1 s after
    ingesting 1M events. Cycles among them are still found, by the next full collection.
    The move is skipped when the caller keeps objects frozen (``gc.get_freeze_count()``):
    unfreezing would hand those back to the collector.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()
