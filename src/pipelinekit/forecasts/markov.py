"""The Markov-chain forecast: stage-to-stage moves learned from stage-change history.

Every stage change before ``as_of`` is one observed transition. Counting them gives the
probability of moving from each open stage to each other stage; all won stages are merged
into one absorbing state :data:`WON_STATE` and all lost stages into :data:`LOST_STATE`
(a won deal that moves on from "order" to "invoice" has already been won, and which lost
stage a deal ends in does not change what it brings). With ``Q`` the moves among open
stages and ``R`` the moves into the absorbing states, the fundamental matrix
``N = (I − Q)⁻¹`` gives

- the absorption probabilities ``B = N R`` (from each stage: the chance of ending won),
- the expected number of stage changes to absorption ``t = N 1``,
- the expected days to absorption ``N h``, with ``h`` the mean holding time of each stage.

All of it is exact ``fractions.Fraction`` arithmetic (Gauss-Jordan elimination in pure
Python: stage schemes have a few dozen stages at most).

Holding times are estimated with censoring: the days deals have spent in a stage (those
still there at ``as_of`` included, up to ``as_of``) divided by the number of exits. This is
the maximum-likelihood mean of an exponential holding time. Under that (memoryless)
assumption the time a deal has already spent in its stage does not change its expected
time to go: the forecaster places each deal at ``as_of`` + the expected days to absorption
**given that it is won** (the chain conditioned on winning: ``Q'ᵢⱼ = Qᵢⱼ bⱼ / bᵢ``).

A stage no deal has ever left gives no evidence: it becomes an absorbing state of its own
(as does any stage from which no observed path reaches won or lost), and a deal absorbed
there counts with that stage's weight as its chance of winning; the result says so.

Example:
    >>> from fractions import Fraction as F
    >>> walk = MarkovChain.from_matrix(
    ...     ("0", "1", "2", "3", "4"),
    ...     [[1, 0, 0, 0, 0], [F(1, 2), 0, F(1, 2), 0, 0], [0, F(1, 2), 0, F(1, 2), 0],
    ...      [0, 0, F(1, 2), 0, F(1, 2)], [0, 0, 0, 0, 1]])
    >>> walk.expected_steps()
    (Fraction(3, 1), Fraction(4, 1), Fraction(3, 1))
    >>> walk.absorption_probability("1", "4")
    Fraction(1, 4)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from fractions import Fraction
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict

from pipelinekit._time import Instant, instant
from pipelinekit.engine.bulk import bulk_work
from pipelinekit.errors import ArgumentError
from pipelinekit.forecasts._learned import Horizon, forecast_rows
from pipelinekit.forecasts._placement import Placement, cents, place
from pipelinekit.forecasts.result import DealForecast, Forecast
from pipelinekit.history import History
from pipelinekit.money import FxRates
from pipelinekit.periods import PeriodKind
from pipelinekit.results import require_same
from pipelinekit.stages import StageScheme

__all__ = [
    "LOST_STATE",
    "WON_STATE",
    "MarkovChain",
    "MarkovForecast",
    "MarkovForecastResult",
    "MarkovLearner",
    "MarkovStage",
    "StageExposure",
    "Transition",
    "TransitionCounts",
    "count_transitions",
]

WON_STATE = "(won)"
"""The absorbing state all won stages are merged into (no stage key has parentheses)."""
LOST_STATE = "(lost)"
"""The absorbing state all lost stages are merged into."""

Matrix = tuple[tuple[Fraction, ...], ...]
_MICROSECONDS_PER_DAY = 86_400 * 1_000_000
_HUNDRED = Decimal(100)


class Transition(BaseModel):
    """How many times deals moved from one state to another."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    target: str
    count: int


class StageExposure(BaseModel):
    """Time deals spent in an open stage (microseconds, censored stays included) and exits."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: str
    microseconds: int
    exits: int

    @property
    def mean_days(self) -> Fraction | None:
        """Time at risk / exits, in days: the censored mean holding time (``None``: no exit)."""
        if not self.exits:
            return None
        return Fraction(self.microseconds, self.exits * _MICROSECONDS_PER_DAY)


class TransitionCounts(BaseModel):
    """Counts of stage changes up to ``as_of``: a sum, so it merges over partitions.

    Attributes:
        as_of: the cut-off; nothing later was counted.
        states: the open stage keys in funnel order, then :data:`WON_STATE`,
            :data:`LOST_STATE`.
        transitions: every observed (source, target) pair with its count, in state order.
        exposure: per open stage, the time spent in it and the number of exits.

    Example:
        >>> from pipelinekit import demo
        >>> h = demo.demo_history(opportunities=40, seed=3)
        >>> ids = h.opportunity_ids
        >>> t = "2024-12-31T00:00:00Z"
        >>> a = count_transitions(h.for_opportunities(ids[:15]), as_of=t)
        >>> b = count_transitions(h.for_opportunities(ids[15:]), as_of=t)
        >>> a.merge(b) == count_transitions(h, as_of=t)
        True
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    as_of: datetime
    states: tuple[str, ...]
    transitions: tuple[Transition, ...] = ()
    exposure: tuple[StageExposure, ...] = ()

    def to_records(self) -> list[dict[str, Any]]:
        """One row per observed transition: source, target, count, share of the source's exits."""
        exits = {e.stage: e.exits for e in self.exposure}
        return [
            {
                "source": t.source,
                "target": t.target,
                "count": t.count,
                "probability": t.count / exits[t.source] if exits.get(t.source) else None,
            }
            for t in self.transitions
        ]

    def merge(self, other: TransitionCounts) -> TransitionCounts:
        """The counts over both sets of opportunities (same ``as_of`` and states).

        Raises:
            ArgumentError: different ``as_of`` or states.
        """
        if not isinstance(other, TransitionCounts):
            raise ArgumentError("other", f"expected TransitionCounts, got {type(other).__name__}")
        require_same("transition counts", self, other, ("as_of", "states"))
        counts: dict[tuple[str, str], int] = {}
        for t in (*self.transitions, *other.transitions):
            counts[(t.source, t.target)] = counts.get((t.source, t.target), 0) + t.count
        time: dict[str, tuple[int, int]] = {}
        for e in (*self.exposure, *other.exposure):
            us, n = time.get(e.stage, (0, 0))
            time[e.stage] = (us + e.microseconds, n + e.exits)
        return _counts(self.as_of, self.states, counts, time)


def count_transitions(history: History, *, as_of: Instant) -> TransitionCounts:
    """Count the stage changes of ``history.until(as_of)``, won and lost stages merged.

    Only moves out of open stages are counted (won and lost are absorbing). A stay still
    going on at ``as_of`` adds its time so far to its stage's exposure but no exit.

    Example:
        >>> from pipelinekit import History, schemes
        >>> h = History.from_records([
        ...     {"type": "opened", "opportunity_id": "o", "at": "2024-01-01T00:00:00Z",
        ...      "stage": "prospecting"},
        ...     {"type": "stage_changed", "opportunity_id": "o", "at": "2024-01-03T00:00:00Z",
        ...      "stage": "closed-won"}], scheme=schemes.get("salesforce"))
        >>> c = count_transitions(h, as_of="2024-02-01T00:00:00Z")
        >>> c.to_records()
        [{'source': 'prospecting', 'target': '(won)', 'count': 1, 'probability': 1.0}]
        >>> c.exposure[0].mean_days
        Fraction(2, 1)
    """
    when = instant(as_of, argument="as_of")
    pipeline = history.until(when).as_of(when)
    scheme = pipeline.scheme
    states = _states(scheme)
    counts: dict[tuple[str, str], int] = {}
    time: dict[str, tuple[int, int]] = {}
    one = timedelta(microseconds=1)
    for opp in pipeline.values():
        path = opp.path
        for i, visit in enumerate(path):
            if not scheme.stage(visit.stage).is_open:
                continue
            left = visit.exited_at if visit.exited_at is not None else when
            us, n = time.get(visit.stage, (0, 0))
            exited = visit.exited_at is not None and i + 1 < len(path)
            time[visit.stage] = (us + (left - visit.entered_at) // one, n + int(exited))
            if exited:
                target = _state(scheme, path[i + 1].stage)
                counts[(visit.stage, target)] = counts.get((visit.stage, target), 0) + 1
    return _counts(when, states, counts, time)


def _states(scheme: StageScheme) -> tuple[str, ...]:
    """The chain's states: the open stage keys in funnel order, then won and lost."""
    return (*(s.key for s in scheme.open_stages), WON_STATE, LOST_STATE)


def _state(scheme: StageScheme, key: str) -> str:
    stage = scheme.stage(key)
    if stage.is_won:
        return WON_STATE
    if stage.is_lost:
        return LOST_STATE
    return key


def _counts(
    as_of: datetime,
    states: tuple[str, ...],
    counts: dict[tuple[str, str], int],
    time: dict[str, tuple[int, int]],
) -> TransitionCounts:
    order = {s: i for i, s in enumerate(states)}
    return TransitionCounts(
        as_of=as_of,
        states=states,
        transitions=tuple(
            Transition(source=a, target=b, count=n)
            for (a, b), n in sorted(
                counts.items(), key=lambda kv: (order[kv[0][0]], order[kv[0][1]])
            )
        ),
        exposure=tuple(
            StageExposure(stage=s, microseconds=us, exits=n)
            for s, (us, n) in sorted(time.items(), key=lambda kv: order[kv[0]])
        ),
    )


class MarkovChain(BaseModel):
    """An absorbing Markov chain in canonical form, with exact Fraction arithmetic.

    Attributes:
        transient: the transient states, in order.
        absorbing: the absorbing states, in order.
        q: transient -> transient probabilities (rows follow ``transient``).
        r: transient -> absorbing probabilities (columns follow ``absorbing``).
        holding_days: the mean days spent in each transient state per visit (optional).

    Raises:
        ArgumentError: (``q``/``r``) shapes that do not fit, a probability outside [0, 1],
            a row of ``[Q R]`` that does not add up to 1, or ``I − Q`` singular (some
            transient state never reaches an absorbing one).

    Example:
        >>> from fractions import Fraction as F
        >>> chain = MarkovChain(transient=("a",), absorbing=("won", "lost"),
        ...                     q=((F(1, 2),),), r=((F(1, 4), F(1, 4)),),
        ...                     holding_days=(F(3),))
        >>> chain.fundamental(), chain.absorption_probability("a", "won")
        (((Fraction(2, 1),),), Fraction(1, 2))
        >>> chain.expected_days()
        (Fraction(6, 1),)
    """

    model_config = ConfigDict(frozen=True, extra="forbid", ignored_types=(cached_property,))

    transient: tuple[str, ...]
    absorbing: tuple[str, ...]
    q: Matrix
    r: Matrix
    holding_days: tuple[Fraction, ...] | None = None

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        self._check()

    def _check(self) -> None:
        """Check the shapes and that every row of ``[Q R]`` is a distribution."""
        n, m = len(self.transient), len(self.absorbing)
        if len(set(self.transient) | set(self.absorbing)) != n + m:
            raise ArgumentError("transient", "state names must be unique")
        if len(self.q) != n or any(len(row) != n for row in self.q):
            raise ArgumentError("q", f"expected a {n}x{n} matrix")
        if len(self.r) != n or any(len(row) != m for row in self.r):
            raise ArgumentError("r", f"expected a {n}x{m} matrix")
        for name, row in zip(self.transient, zip(self.q, self.r, strict=True), strict=True):
            values = (*row[0], *row[1])
            if any(not 0 <= v <= 1 for v in values) or sum(values) != 1:
                raise ArgumentError(
                    "q", f"the probabilities out of state {name!r} must be in [0, 1] and add to 1"
                )
        if self.holding_days is not None and len(self.holding_days) != n:
            raise ArgumentError("holding_days", f"expected {n} values, one per transient state")
        self.fundamental()  # fail early on a singular I - Q

    @classmethod
    def from_matrix(
        cls, states: Sequence[str], matrix: Sequence[Sequence[Fraction | int]]
    ) -> MarkovChain:
        """Build the canonical form from a full transition matrix.

        A state whose row puts probability 1 on itself is absorbing; the others are
        transient. Order within each group follows ``states``.
        """
        size = len(states)
        if len(matrix) != size or any(len(row) != size for row in matrix):
            raise ArgumentError("matrix", f"expected a {size}x{size} matrix")
        rows = [[Fraction(v) for v in row] for row in matrix]
        absorbing = [i for i in range(size) if rows[i][i] == 1]
        transient = [i for i in range(size) if rows[i][i] != 1]
        return cls(
            transient=tuple(states[i] for i in transient),
            absorbing=tuple(states[i] for i in absorbing),
            q=tuple(tuple(rows[i][j] for j in transient) for i in transient),
            r=tuple(tuple(rows[i][j] for j in absorbing) for i in transient),
        )

    @classmethod
    def from_counts(cls, counts: TransitionCounts) -> MarkovChain:
        """The maximum-likelihood chain of the observed transitions.

        ``P(s → t)`` is the count of ``s → t`` over the exits from ``s``. Open stages
        never left, or from which no observed path reaches won or lost, carry no evidence
        about how deals end: they become absorbing states of their own (after
        :data:`WON_STATE` and :data:`LOST_STATE`).
        """
        exits = {e.stage: e.exits for e in counts.exposure}
        out: dict[str, dict[str, int]] = {}
        for t in counts.transitions:
            out.setdefault(t.source, {})[t.target] = t.count
        opens = [s for s in counts.states if s not in (WON_STATE, LOST_STATE)]
        ends = {WON_STATE, LOST_STATE}
        grew = True
        while grew:  # states from which won or lost can be reached
            grew = False
            for s in opens:
                if s not in ends and any(t in ends for t in out.get(s, {})):
                    ends.add(s)
                    grew = True
        transient = tuple(s for s in opens if s in ends and exits.get(s))
        absorbing = (WON_STATE, LOST_STATE, *(s for s in opens if s not in transient))

        def row(s: str, targets: tuple[str, ...]) -> tuple[Fraction, ...]:
            return tuple(Fraction(out.get(s, {}).get(t, 0), exits[s]) for t in targets)

        holding = {e.stage: e.mean_days for e in counts.exposure}
        return cls(
            transient=transient,
            absorbing=absorbing,
            q=tuple(row(s, transient) for s in transient),
            r=tuple(row(s, absorbing) for s in transient),
            holding_days=tuple(holding[s] or Fraction(0) for s in transient),
        )

    @cached_property
    def _n(self) -> Matrix:
        size = len(self.transient)
        i_minus_q = [
            [(1 if i == j else 0) - self.q[i][j] for j in range(size)] for i in range(size)
        ]
        return _inverse(i_minus_q)

    def fundamental(self) -> Matrix:
        """``N = (I − Q)⁻¹``: ``N[i][j]`` is the expected visits to ``j`` starting from ``i``."""
        return self._n

    def absorption_probabilities(self) -> Matrix:
        """``B = N R``: ``B[i][k]`` is the chance of ending in absorbing state ``k`` from ``i``."""
        return _product(self._n, self.r)

    def absorption_probability(self, start: str, end: str) -> Fraction:
        """The chance of ending in absorbing state ``end`` starting from ``start``.

        From an absorbing state it is 1 if ``start == end`` else 0.

        Raises:
            ArgumentError: an unknown state.
        """
        if end not in self.absorbing:
            raise ArgumentError("end", f"{end!r} is not an absorbing state: {self.absorbing}")
        if start in self.absorbing:
            return Fraction(int(start == end))
        return self.absorption_probabilities()[self._index(start)][self.absorbing.index(end)]

    def expected_steps(self) -> tuple[Fraction, ...]:
        """``t = N 1``: the expected number of steps to absorption from each transient state."""
        return tuple(sum(row, Fraction(0)) for row in self._n)

    def expected_days(self) -> tuple[Fraction, ...]:
        """``N h``: the expected days to absorption from each transient state.

        Raises:
            ArgumentError: the chain has no ``holding_days``.
        """
        return _times(self._n, self._holding())

    def expected_days_to(self, end: str) -> tuple[Fraction | None, ...]:
        """The expected days to absorption **given** absorption in ``end``.

        The conditioned chain moves ``i → j`` with ``Q[i][j] b[j] / b[i]`` (``b``: the
        chance of ending in ``end``); ``None`` where ``b[i] = 0``.

        Example:
            >>> from fractions import Fraction as F
            >>> c = MarkovChain(transient=("a", "b"), absorbing=("won", "lost"),
            ...                 q=((0, F(1, 2)), (0, 0)), r=((0, F(1, 2)), (1, 0)),
            ...                 holding_days=(F(10), F(5)))
            >>> c.expected_days_to("won")
            (Fraction(15, 1), Fraction(5, 1))
        """
        if end not in self.absorbing:
            raise ArgumentError("end", f"{end!r} is not an absorbing state: {self.absorbing}")
        k = self.absorbing.index(end)
        b = [row[k] for row in self.absorption_probabilities()]
        live = [i for i in range(len(b)) if b[i] > 0]
        size = len(live)
        conditioned = [
            [(1 if a == c else 0) - self.q[i][j] * b[j] / b[i] for c, j in enumerate(live)]
            for a, i in enumerate(live)
        ]
        holding = self._holding()
        days = _times(_inverse(conditioned), tuple(holding[j] for j in live)) if size else ()
        out: list[Fraction | None] = [None] * len(b)
        for a, i in enumerate(live):
            out[i] = days[a]
        return tuple(out)

    def _holding(self) -> tuple[Fraction, ...]:
        if self.holding_days is None:
            raise ArgumentError("holding_days", "the chain has no holding times")
        return self.holding_days

    def _index(self, state: str) -> int:
        if state not in self.transient:
            raise ArgumentError(
                "start", f"unknown state {state!r}; states are {self.transient + self.absorbing}"
            )
        return self.transient.index(state)


def _inverse(matrix: list[list[Fraction]]) -> Matrix:
    """Exact Gauss-Jordan inverse; ``ArgumentError`` naming ``q`` for a singular matrix."""
    size = len(matrix)
    rows = [
        [Fraction(v) for v in row] + [Fraction(int(i == j)) for j in range(size)]
        for i, row in enumerate(matrix)
    ]
    for col in range(size):
        pivot = next((r for r in range(col, size) if rows[r][col] != 0), None)
        if pivot is None:
            raise ArgumentError(
                "q", "I - Q is singular: some transient state never reaches an absorbing state"
            )
        rows[col], rows[pivot] = rows[pivot], rows[col]
        lead = rows[col][col]
        rows[col] = [v / lead for v in rows[col]]
        for r in range(size):
            factor = rows[r][col]
            if r != col and factor != 0:
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col], strict=True)]
    return tuple(tuple(row[size:]) for row in rows)


def _product(a: Matrix, b: Matrix) -> Matrix:
    inner = range(len(b))
    cols = range(len(b[0])) if b else range(0)
    return tuple(
        tuple(sum((row[k] * b[k][j] for k in inner), Fraction(0)) for j in cols) for row in a
    )


def _times(n: Matrix, h: tuple[Fraction, ...]) -> tuple[Fraction, ...]:
    return tuple(sum((v * w for v, w in zip(row, h, strict=True)), Fraction(0)) for row in n)


class MarkovStage(BaseModel):
    """What the chain says about one open stage.

    Attributes:
        stage: the open stage key.
        exits: how many times deals left the stage (the evidence).
        win_probability: the chance a deal there ends won (absorption in won, plus the
            weight of any evidence-less stage it may end up stuck in).
        expected_steps: expected stage changes until won or lost (``None``: no evidence).
        expected_days: expected days until won or lost.
        expected_days_to_win: expected days until won, given it is won.
        holding_days: mean days per stay in the stage (censored estimate).
        source: ``"chain"`` or ``"weight"`` (no deal ever left the stage).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: str
    exits: int
    win_probability: float
    expected_steps: float | None = None
    expected_days: float | None = None
    expected_days_to_win: float | None = None
    holding_days: float | None = None
    source: str = "chain"


class MarkovForecastResult(Forecast):
    """A :class:`~pipelinekit.forecasts.result.Forecast` with the chain's stage table.

    Attributes:
        stages: per open stage: win probability, expected steps and days.
        transitions: the counts the chain was estimated from.
        fallback: why stage weights and close dates were used (``None``: they were not).
        notes: other caveats.
    """

    stages: tuple[MarkovStage, ...] = ()
    transitions: TransitionCounts | None = None
    fallback: str | None = None
    notes: tuple[str, ...] = ()

    def stages_records(self) -> list[dict[str, Any]]:
        """The stage table as rows of plain values."""
        return [s.model_dump() for s in self.stages]

    def merge(self, other: Forecast) -> MarkovForecastResult:
        """Add a forecast made with the **same chain** (see ``HistoricalForecastResult.merge``).

        Raises:
            ArgumentError: ``other`` used another chain, method, ``as_of`` or currency.
        """
        if not isinstance(other, MarkovForecastResult) or (other.stages, other.fallback) != (
            self.stages,
            self.fallback,
        ):
            raise ArgumentError(
                "other",
                "Markov forecasts only merge when they used the same chain; merge the "
                "TransitionCounts of the partitions instead",
            )
        merged = super().merge(other)
        return self.model_copy(
            update={"rows": merged.rows, "deals": merged.deals, "currency": merged.currency}
        )


class MarkovLearner:
    """A calculator whose result is the :class:`TransitionCounts` a Markov forecast learns.

    ``MarkovForecast(...).learner()`` makes one; it computes per partition like any
    mergeable calculator (``pipelinekit.distributed``).

    Example:
        >>> from pipelinekit import demo
        >>> h = demo.demo_history(opportunities=20, seed=1)
        >>> counts = MarkovForecast().learner().compute(h, as_of="2024-06-30T00:00:00Z")
        >>> counts == count_transitions(h, as_of="2024-06-30T00:00:00Z")
        True
    """

    def __repr__(self) -> str:
        return "MarkovLearner()"

    def compute(self, history: History, *, as_of: Instant) -> TransitionCounts:
        """:func:`count_transitions` of ``history.until(as_of)``."""
        return count_transitions(history, as_of=as_of)


class MarkovForecast:
    """Forecast with an absorbing Markov chain of stage changes learned before ``as_of``.

    Each open deal's win probability is the chain's absorption probability in won from its
    stage; its expected value (``amount × probability``) is placed in the period
    ``as_of`` + expected days to win (given won) falls in. ``new`` is 0: the chain only
    knows deals that exist.

    Args:
        period, horizon, currency, rates, tz: as for
            :class:`~pipelinekit.forecasts.weighted.WeightedForecast`.
        learned: :class:`TransitionCounts` to build the chain from instead of counting the
            history given to :meth:`compute` (which then supplies only the deals to place):
            typically the counts of every partition, merged, so that the forecasts of the
            partitions add up to the forecast of the whole. They must have been counted at
            the same ``as_of`` on the same scheme's stages.

    Attributes (after :meth:`compute`):
        counts_: the :class:`TransitionCounts`; chain_: the :class:`MarkovChain`.

    Example:
        >>> from pipelinekit import demo
        >>> f = MarkovForecast(horizon=3).compute(
        ...     demo.demo_history(opportunities=60, seed=42), as_of="2024-09-30T00:00:00+00:00")
        >>> s = f.stages[0]
        >>> s.stage, s.exits, round(s.win_probability, 3)
        ('prospecting', 39, 0.442)
    """

    counts_: TransitionCounts
    chain_: MarkovChain

    def __init__(
        self,
        *,
        period: str | PeriodKind = "month",
        horizon: int = 3,
        currency: str | None = None,
        rates: FxRates | None = None,
        tz: tzinfo = UTC,
        learned: TransitionCounts | None = None,
    ) -> None:
        self._placement = Placement.validate(
            period=period,
            horizon=horizon,
            group_by=None,
            currency=currency,
            rates=rates,
            tz=tz,
            categories=None,
        )
        if learned is not None and not isinstance(learned, TransitionCounts):
            raise ArgumentError(
                "learned", f"expected TransitionCounts or None, got {type(learned).__name__}"
            )
        self.period = period
        self.horizon = horizon
        self.currency = currency
        self.rates = rates
        self.tz = tz
        self.learned = learned

    def __repr__(self) -> str:
        learned = "" if self.learned is None else ", learned=<TransitionCounts>"
        return (
            f"MarkovForecast(period={self._placement.kind.spec!r}, "
            f"horizon={self.horizon!r}{learned})"
        )

    def learner(self) -> MarkovLearner:
        """A calculator of the :class:`TransitionCounts` this forecaster learns, to count
        over partitions (:func:`~pipelinekit.calculators.compute_partitioned`,
        ``pipelinekit.distributed``) and pass, merged, as ``learned``.

        Example:
            >>> from pipelinekit import demo
            >>> from pipelinekit.calculators import compute_partitioned
            >>> h, when = demo.demo_history(opportunities=60, seed=42), "2024-09-30T00:00:00Z"
            >>> parts = h.partition(3)
            >>> counts = compute_partitioned(MarkovForecast().learner(), parts, as_of=when)
            >>> by_parts = compute_partitioned(
            ...     MarkovForecast(learned=counts), parts, as_of=when)
            >>> by_parts == MarkovForecast().compute(h, as_of=when)
            True
        """
        return MarkovLearner()

    def compute(self, history: History, *, as_of: Instant) -> MarkovForecastResult:
        """Estimate the chain from ``history.until(as_of)`` and forecast the horizon.

        Raises:
            ArgumentError: (``scheme``) a stage weight is needed (no evidence) but missing;
                (``learned``) counts made at another ``as_of`` or on other stages.
            CurrencyError: amounts in several currencies without ``currency``/``rates``.
        """
        with bulk_work():  # no GC passes over the transient snapshot: docs/performance.md
            return self._compute(history, as_of)

    def _compute(self, history: History, as_of: Instant) -> MarkovForecastResult:
        when = instant(as_of, argument="as_of")
        pipeline = history.until(when).as_of(when)
        scheme = pipeline.scheme
        layout = place(self._placement, pipeline, when)
        horizon = Horizon.of(layout.periods, when, self._placement.tz)
        if self.learned is None:
            counts = count_transitions(history, as_of=when)
        else:
            counts = self.learned
            states = _states(scheme)
            if counts.as_of != when or counts.states != states:
                raise ArgumentError(
                    "learned",
                    f"the counts were made at {counts.as_of.isoformat()} on states "
                    f"{list(counts.states)}; this forecast is at {when.isoformat()} on "
                    f"{list(states)}",
                )
        chain = MarkovChain.from_counts(counts)
        self.counts_, self.chain_ = counts, chain
        stages, notes = _stage_table(chain, counts, scheme)
        fallback = None
        if not counts.transitions:
            fallback = (
                "no stage change before as_of: win probabilities are the stage weights and "
                "open deals are placed by their expected close dates"
            )
        table = {s.stage: s for s in stages}
        allocations: list[dict[str, Decimal]] = []
        deals: list[DealForecast] = []
        for placed in layout.open:
            opp = placed.opportunity
            row = table[opp.stage]
            if row.source == "weight" and opp.stage_weight is None:
                raise ArgumentError(
                    "scheme",
                    f"no deal ever left stage {opp.stage!r} and it has no weight to fall back on",
                )
            probability = Decimal(repr(row.win_probability))
            value = cents(placed.amount * probability)
            if row.expected_days_to_win is None:
                bucket = placed.bucket  # no learned timing: the typed-in close date
            else:
                bucket = horizon.bucket_after(row.expected_days_to_win)
            allocations.append({bucket: value})
            deals.append(
                DealForecast(
                    opportunity_id=opp.id,
                    stage=opp.stage,
                    amount=placed.amount,
                    win_probability=row.win_probability,
                    expected=value,
                    bucket=bucket,
                )
            )
        return MarkovForecastResult(
            method="markov",
            as_of=when,
            currency=layout.currency,
            rows=forecast_rows(horizon, layout.won, allocations),
            deals=tuple(deals),
            stages=stages,
            transitions=counts,
            fallback=fallback,
            notes=tuple(notes),
        )


def _stage_table(
    chain: MarkovChain, counts: TransitionCounts, scheme: StageScheme
) -> tuple[tuple[MarkovStage, ...], list[str]]:
    exits = {e.stage: e.exits for e in counts.exposure}
    holding = {e.stage: e.mean_days for e in counts.exposure}
    b = chain.absorption_probabilities()
    steps = chain.expected_steps()
    days = chain.expected_days()
    to_win = chain.expected_days_to(WON_STATE)
    stuck = [s for s in chain.absorbing if s not in (WON_STATE, LOST_STATE)]

    def weight(key: str) -> Fraction:
        w = scheme.stage(key).weight
        return Fraction(0) if w is None else Fraction(w) / 100

    rows: list[MarkovStage] = []
    for s in scheme.open_stages:
        mean = holding.get(s.key)
        if s.key in chain.transient:
            i = chain.transient.index(s.key)
            p = b[i][0] + sum(
                (b[i][chain.absorbing.index(u)] * weight(u) for u in stuck), Fraction(0)
            )
            t = to_win[i]
            rows.append(
                MarkovStage(
                    stage=s.key,
                    exits=exits.get(s.key, 0),
                    win_probability=float(p),
                    expected_steps=float(steps[i]),
                    expected_days=float(days[i]),
                    expected_days_to_win=None if t is None else float(t),
                    holding_days=None if mean is None else float(mean),
                )
            )
        else:
            rows.append(
                MarkovStage(
                    stage=s.key,
                    exits=exits.get(s.key, 0),
                    win_probability=float(weight(s.key)),
                    holding_days=None if mean is None else float(mean),
                    source="weight",
                )
            )
    notes: list[str] = []
    if stuck and counts.transitions:
        notes.append(
            f"no observed path from {stuck} to won or lost: deals there count with the "
            "stage weight and are placed by their expected close date"
        )
    return tuple(rows), notes
