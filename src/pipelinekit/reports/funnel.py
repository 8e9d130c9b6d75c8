"""Funnel conversion: how far a cohort of opportunities got, and where the others were lost.

For the opportunities opened in a cohort window, :class:`FunnelConversion` counts per open
stage in funnel order (then ``won``) how many *reached* the stage, and derives the
stage-to-next, cumulative and stage-to-won conversion rates; it counts where lost deals
were lost (their last open stage) and every stage-to-stage move (Pipedrive's movement
statistics).

Two modes, as HubSpot offers them:

- ``"any_path"``: the shared definition of *reached*: the opportunity entered the stage or any later
  stage in funnel order (skipping counts as passing through; lost stages are not "later");
  a deal that entered a won stage reached every open stage.
- ``"in_order"``: the opportunity's path visited the first open stage, the second, ... up to
  this stage, in that order (re-entries allowed); a skipped stage stops the count there. A
  deal counts as won only if it passed through every open stage in order.

Rates are floats (statistics, not money), recomputed from the counts, and ``None`` when the
denominator is 0. Results on disjoint sets of opportunities merge exactly.

Example:
    >>> import pipelinekit as pk
    >>> from pipelinekit.reports.funnel import FunnelConversion
    >>> recs = [
    ...   {"type": "opened", "opportunity_id": "a", "at": "2024-01-01T00:00:00Z",
    ...    "stage": "prospecting"},
    ...   {"type": "stage_changed", "opportunity_id": "a", "at": "2024-01-10T00:00:00Z",
    ...    "stage": "closed-won"},
    ...   {"type": "opened", "opportunity_id": "b", "at": "2024-01-02T00:00:00Z",
    ...    "stage": "prospecting"},
    ...   {"type": "stage_changed", "opportunity_id": "b", "at": "2024-01-05T00:00:00Z",
    ...    "stage": "qualification"},
    ...   {"type": "stage_changed", "opportunity_id": "b", "at": "2024-01-09T00:00:00Z",
    ...    "stage": "closed-lost"}]
    >>> h = pk.History.from_records(recs, scheme=pk.schemes.get("salesforce"))
    >>> r = FunnelConversion().compute(h, as_of="2024-02-01T00:00:00Z")
    >>> [(s.stage, s.reached, s.lost_here) for s in r.stages[:3]]
    [('prospecting', 2, 0), ('qualification', 2, 1), ('needs-analysis', 1, 0)]
    >>> r.stages[-1].stage, r.stages[-1].reached, r.stages[1].to_won
    ('won', 1, 0.5)
    >>> FunnelConversion(mode="in_order").compute(h, as_of="2024-02-01T00:00:00Z").won
    0
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from pipelinekit._time import Instant, instant
from pipelinekit.errors import ArgumentError
from pipelinekit.history import History
from pipelinekit.opportunity import Opportunity, reached_stages
from pipelinekit.reports._windows import Window, in_window, ratio, window_arg
from pipelinekit.results import Result
from pipelinekit.stages import StageScheme

__all__ = [
    "WON_ROW",
    "FunnelConversion",
    "FunnelConversionResult",
    "FunnelMode",
    "FunnelStage",
    "StageMovement",
    "reach",
]

FunnelMode = Literal["any_path", "in_order"]
_MODES = ("any_path", "in_order")
WON_ROW = "won"
"""The ``stage`` of the funnel's last row: the cohort's won deals (any won stage)."""

_FROZEN = ConfigDict(frozen=True, extra="forbid")


def reach(opportunity: Opportunity, scheme: StageScheme, mode: FunnelMode = "any_path") -> int:
    """How many open stages, counted from the first in funnel order, ``opportunity`` reached.

    ``any_path``: one more than the position of the furthest open stage entered (every
    open stage if a won stage was entered). ``in_order``: the length of the longest prefix
    of the open stages that the path visits in order.

    Example:
        >>> import pipelinekit as pk
        >>> h = pk.History.from_records([
        ...   {"type": "opened", "opportunity_id": "a", "at": "2024-01-01T00:00:00Z",
        ...    "stage": "qualification"}], scheme=pk.schemes.get("salesforce"))
        >>> opp = h.as_of("2024-01-02T00:00:00Z")["a"]
        >>> reach(opp, h.scheme), reach(opp, h.scheme, "in_order")
        (2, 0)
    """
    open_keys = [s.key for s in scheme.open_stages]
    if mode == "in_order":
        matched = 0
        for visit in opportunity.path:
            if matched < len(open_keys) and visit.stage == open_keys[matched]:
                matched += 1
        return matched
    return len(reached_stages(opportunity, scheme))


def _last_open_stage(opportunity: Opportunity, scheme: StageScheme) -> str | None:
    for visit in reversed(opportunity.path):
        if scheme.stage(visit.stage).is_open:
            return visit.stage
    return None


class FunnelStage(BaseModel):
    """One row of the funnel: an open stage, or the final ``won`` row.

    Attributes:
        stage: the stage key (:data:`WON_ROW` for the won row); ``label`` its label.
        kind: ``"open"`` or ``"won"``.
        reached: cohort opportunities that reached the stage (in the result's mode).
        won: of those, how many are won at ``as_of``.
        lost_here: lost deals whose last open stage was this one (0 on the won row).
        to_next: reached at the next row ÷ reached here (``None`` on the won row).
        cumulative: reached here ÷ reached at the first stage.
        to_won: won ÷ reached.
    """

    model_config = _FROZEN

    stage: str
    label: str
    kind: Literal["open", "won"]
    reached: int
    won: int
    lost_here: int
    to_next: float | None
    cumulative: float | None
    to_won: float | None


class StageMovement(BaseModel):
    """How many times cohort opportunities moved from one stage to another by ``as_of``."""

    model_config = _FROZEN

    from_stage: str
    to_stage: str
    count: int


class FunnelConversionResult(Result):
    """The funnel of a cohort: reached counts, conversion rates, losses and movements.

    Attributes:
        as_of: the instant the funnel is computed at.
        mode: ``"any_path"`` or ``"in_order"``.
        cohort: the ``[start, end)`` window of opening, or ``None`` (all opened by as_of).
        scheme: the scheme's name; ``funnel_order`` its stage keys in funnel order.
        cohort_size: opportunities in the cohort.
        lost_at_opening: lost deals that never were in an open stage (opened as lost).
        stages: one row per open stage in funnel order, then the ``won`` row.
        movements: stage-to-stage move counts, in funnel order of (from, to).

    ``to_records()`` gives the stage rows; ``movement_records()`` the movement matrix.
    """

    as_of: datetime
    mode: FunnelMode
    cohort: Window | None
    scheme: str
    funnel_order: tuple[str, ...]
    cohort_size: int
    lost_at_opening: int
    stages: tuple[FunnelStage, ...]
    movements: tuple[StageMovement, ...]

    @property
    def won(self) -> int:
        """Cohort deals counted on the won row."""
        return self.stages[-1].reached

    def stage(self, key: str) -> FunnelStage:
        """The row of stage ``key`` (or :data:`WON_ROW`).

        Raises:
            ArgumentError: no such row.
        """
        for row in self.stages:
            if row.stage == key:
                return row
        raise ArgumentError(
            "stage", f"unknown stage key {key!r}; rows are {[r.stage for r in self.stages]}"
        )

    def movement(self, from_stage: str, to_stage: str) -> int:
        """How many moves ``from_stage`` -> ``to_stage`` the cohort made (0 if none)."""
        for m in self.movements:
            if m.from_stage == from_stage and m.to_stage == to_stage:
                return m.count
        return 0

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per funnel row."""
        return [row.model_dump() for row in self.stages]

    def movement_records(self) -> list[dict[str, Any]]:
        """One dict per (from, to) pair with at least one move."""
        return [m.model_dump() for m in self.movements]

    def _html_title(self) -> str:
        return f"Funnel conversion ({self.mode}) as of {self.as_of.isoformat()}"

    def merge(self, other: FunnelConversionResult) -> FunnelConversionResult:
        """The funnel over both sets of opportunities (counts add, rates are recomputed).

        Raises:
            ArgumentError: the results differ in as_of, mode, cohort or scheme.
        """
        if not isinstance(other, FunnelConversionResult):
            raise ArgumentError("other", f"expected a FunnelConversionResult, got {other!r}")
        for name in ("as_of", "mode", "cohort", "scheme", "funnel_order"):
            if getattr(self, name) != getattr(other, name):
                raise ArgumentError(
                    "other",
                    f"cannot merge funnels with different {name}: "
                    f"{getattr(self, name)!r} != {getattr(other, name)!r}",
                )
        moves = Counter({(m.from_stage, m.to_stage): m.count for m in self.movements})
        moves.update({(m.from_stage, m.to_stage): m.count for m in other.movements})
        order = {key: i for i, key in enumerate(self.funnel_order)}
        return self.model_copy(
            update={
                "cohort_size": self.cohort_size + other.cohort_size,
                "lost_at_opening": self.lost_at_opening + other.lost_at_opening,
                "stages": _rows(
                    [(r.stage, r.label) for r in self.stages[:-1]],
                    [a.reached + b.reached for a, b in zip(self.stages, other.stages, strict=True)],
                    [a.won + b.won for a, b in zip(self.stages, other.stages, strict=True)],
                    [
                        a.lost_here + b.lost_here
                        for a, b in zip(self.stages, other.stages, strict=True)
                    ],
                ),
                "movements": _movements(moves, order),
            }
        )


class FunnelConversion:
    """Funnel conversion of a cohort of opportunities (see the module docs).

    Args:
        cohort: ``(start, end)``: the opportunities opened in ``[start, end)``; ``None``
            takes every opportunity opened by ``as_of``.
        mode: ``"any_path"`` (reached by any path, skips count) or ``"in_order"``
            (passed through every earlier open stage in order).

    Raises:
        ArgumentError: ``cohort`` is not a pair of instants or ends before it starts;
            ``mode`` is unknown.

    Example:
        >>> from pipelinekit import demo
        >>> from pipelinekit.reports.funnel import FunnelConversion
        >>> h = demo.demo_history(opportunities=30, seed=3)
        >>> r = FunnelConversion().compute(h, as_of="2024-09-30T00:00:00Z")
        >>> r.stages[0].reached == r.cohort_size, r.stages[0].cumulative
        (True, 1.0)
    """

    def __init__(self, *, cohort: tuple[Instant, Instant] | None = None, mode: str = "any_path"):
        self.cohort = window_arg(cohort, argument="cohort")
        if mode not in _MODES:
            raise ArgumentError("mode", f"expected one of {list(_MODES)}, got {mode!r}")
        self.mode: FunnelMode = "in_order" if mode == "in_order" else "any_path"

    def __repr__(self) -> str:
        return f"FunnelConversion(cohort={self.cohort!r}, mode={self.mode!r})"

    def compute(self, history: History, *, as_of: Instant) -> FunnelConversionResult:
        """The funnel of the cohort as of ``as_of`` (nothing after ``as_of`` is seen)."""
        when = instant(as_of, argument="as_of")
        history = history.until(when)
        scheme = history.scheme
        cohort = [
            opp for opp in history.as_of(when).values() if in_window(opp.opened_at, self.cohort)
        ]
        open_stages = scheme.open_stages
        n = len(open_stages)
        reached = [0] * (n + 1)
        won = [0] * (n + 1)
        lost_here = [0] * (n + 1)
        index = {s.key: i for i, s in enumerate(open_stages)}
        lost_at_opening = 0
        moves: Counter[tuple[str, str]] = Counter()
        for opp in cohort:
            k = reach(opp, scheme, self.mode)
            counts_as_won = opp.is_won and (self.mode == "any_path" or k == n)
            for i in range(k):
                reached[i] += 1
                won[i] += opp.is_won
            if counts_as_won:
                reached[n] += 1
                won[n] += 1
            if opp.is_lost:
                last = _last_open_stage(opp, scheme)
                if last is None:
                    lost_at_opening += 1
                else:
                    lost_here[index[last]] += 1
            for a, b in zip(opp.path, opp.path[1:], strict=False):
                moves[(a.stage, b.stage)] += 1
        order = {key: i for i, key in enumerate(scheme.keys)}
        return FunnelConversionResult(
            as_of=when,
            mode=self.mode,
            cohort=self.cohort,
            scheme=scheme.name,
            funnel_order=scheme.keys,
            cohort_size=len(cohort),
            lost_at_opening=lost_at_opening,
            stages=_rows([(s.key, s.label) for s in open_stages], reached, won, lost_here),
            movements=_movements(moves, order),
        )


def _rows(
    stages: list[tuple[str, str]], reached: list[int], won: list[int], lost_here: list[int]
) -> tuple[FunnelStage, ...]:
    keys = [*stages, (WON_ROW, "Won")]
    first = reached[0]
    rows = []
    for i, (key, label) in enumerate(keys):
        last = i == len(keys) - 1
        rows.append(
            FunnelStage(
                stage=key,
                label=label,
                kind="won" if last else "open",
                reached=reached[i],
                won=won[i],
                lost_here=lost_here[i],
                to_next=None if last else ratio(reached[i + 1], reached[i]),
                cumulative=ratio(reached[i], first),
                to_won=ratio(won[i], reached[i]),
            )
        )
    return tuple(rows)


def _movements(
    moves: Counter[tuple[str, str]] | Iterable[tuple[tuple[str, str], int]],
    order: dict[str, int],
) -> tuple[StageMovement, ...]:
    items = moves.items() if isinstance(moves, Counter) else moves
    big = len(order)
    ranked = sorted(
        ((pair, count) for pair, count in items if count),
        key=lambda pc: (order.get(pc[0][0], big), order.get(pc[0][1], big), pc[0]),
    )
    return tuple(StageMovement(from_stage=a, to_stage=b, count=c) for (a, b), c in ranked)
