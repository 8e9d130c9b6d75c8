"""The plug points: what a calculator is, and how mergeable results combine.

A calculator is anything with ``compute(history, *, as_of)`` returning a result; reports
describe, forecasts predict. Calculators are duck-typed through :class:`Calculator` (no
base class, no registry). A result that is a sum (counts, amounts) also has ``merge``:
computed on two disjoint sets of opportunities and merged, it equals the result computed
on all of them, so :func:`compute_partitioned` can spread the work.

Example:
    >>> import pipelinekit as pk
    >>> from pipelinekit.calculators import Calculator, compute_partitioned
    >>> class OpenCount(pk.results.Result):
    ...     n: int
    ...     def merge(self, other): return OpenCount(n=self.n + other.n)
    ...     def to_records(self): return [{"open": self.n}]
    >>> class CountOpen:
    ...     def compute(self, history, *, as_of):
    ...         return OpenCount(n=len(history.until(as_of).as_of(as_of).open()))
    >>> isinstance(CountOpen(), Calculator)
    True
    >>> recs = [{"type": "opened", "opportunity_id": f"o-{i}", "stage": "lead",
    ...          "at": "2024-01-05T10:00:00Z"} for i in range(5)]
    >>> h = pk.History.from_records(recs, scheme=pk.schemes.get("vtiger-lead-funnel"))
    >>> parts = [h.for_opportunities(["o-0", "o-1"]), h.for_opportunities(["o-2", "o-3", "o-4"])]
    >>> compute_partitioned(CountOpen(), parts, as_of="2024-02-01T00:00:00Z").n
    5
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import reduce
from typing import TYPE_CHECKING, Protocol, Self, TypeVar, runtime_checkable

from pipelinekit._time import Instant
from pipelinekit.errors import ArgumentError
from pipelinekit.partitions import partition_of

if TYPE_CHECKING:  # pragma: no cover
    from pipelinekit.history import History

__all__ = ["Calculator", "Mergeable", "compute_partitioned", "partition_of"]

R_co = TypeVar("R_co", covariant=True)


@runtime_checkable
class Calculator(Protocol[R_co]):
    """Anything that computes a result from a history as of an instant.

    A calculator must only look at ``history.until(as_of)`` (no look-ahead) and must be
    deterministic: the same history and ``as_of`` give an equal result.
    """

    def compute(self, history: History, *, as_of: Instant) -> R_co:
        """Compute the result as of ``as_of``."""
        ...


@runtime_checkable
class Mergeable(Protocol):
    """A result that can be combined with the same result on other opportunities."""

    def merge(self, other: Self) -> Self:
        """The result over the union of both sets of opportunities."""
        ...


M = TypeVar("M", bound=Mergeable)


def compute_partitioned(
    calculator: Calculator[M], partitions: Iterable[History], *, as_of: Instant
) -> M:
    """Compute on each partition of opportunities and merge the results.

    Each opportunity's events must all be in one partition. The partitions can be
    computed anywhere (threads, processes, a Dask or Spark cluster); this is the plain
    single-process reduction.

    Raises:
        ArgumentError: no partitions were given.
    """
    results = [calculator.compute(part, as_of=as_of) for part in partitions]
    if not results:
        raise ArgumentError("partitions", "at least one partition is needed")
    return reduce(lambda a, b: a.merge(b), results)
