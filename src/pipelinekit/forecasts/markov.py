"""The Markov-chain forecast: stage-to-stage moves and stays learned from stage-change history.

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
Python: stage schemes have a few dozen stages at most). :class:`MarkovChain` is that chain;
the stage table reports it.

The forecast itself is **semi-Markov**: how long a deal stays in a stage, and where it goes
next, depend on how long it has already been there. Every stay in an open stage is counted
by whole days and outcome (:class:`StageStays`): left for another state, or still going on at
``as_of`` (censored: evidence that deals stay, not a deal that left). Per stage, the
competing-exit hazards of those stays (Aalen-Johansen) give a deal that has waited ``a``
days its chance of leaving, and for where, on each later day; the stages it moves to start
afresh, and the chances of being won by the end of each horizon period follow from the
renewal equations of the chain (``pipelinekit.forecasts._stays``). So a deal that has waited
long in a stage deals leave quickly is not placed at the average time to win: it gets the
(smaller, later) chances of deals that waited as long. After the last day any deal was seen
to leave a stage, nothing leaves it: deals older than that are counted as staying (the
zombies CRMs keep open), with no chance of being won. Each deal's expected value is spread
over the horizon periods by those chances (the rest, ``later``).

New business, the revenue of deals not open yet at ``as_of``, is learned per lag from past
periods (:mod:`pipelinekit.forecasts.new_business`); a lag with no evidence is reported as
such in the result, never as a silent 0.

A stage no deal has ever left gives no evidence: it becomes an absorbing state of its own
(as does any stage from which no observed path reaches won or lost), and a deal absorbed
there counts with that stage's weight as its chance of winning, with no known timing (deals
in it are placed by their expected close date); the result says so.

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
from pipelinekit.forecasts._learned import Horizon, check_count, days_between, forecast_rows
from pipelinekit.forecasts._placement import Placement, place
from pipelinekit.forecasts._stays import StageCurve, Timing
from pipelinekit.forecasts.new_business import (
    NewBusinessEvidence,
    NewBusinessLag,
    estimate_new_business,
    learn_new_business,
    no_evidence_note,
)
from pipelinekit.forecasts.result import LATER, NO_CLOSE_DATE, OVERDUE, DealForecast, Forecast
from pipelinekit.history import History
from pipelinekit.money import EXACT, FxRates, total
from pipelinekit.periods import PeriodKind
from pipelinekit.results import require_same
from pipelinekit.stages import StageScheme

__all__ = [
    "LOST_STATE",
    "QUANTUM",
    "WON_STATE",
    "MarkovChain",
    "MarkovEvidence",
    "MarkovForecast",
    "MarkovForecastResult",
    "MarkovLearner",
    "MarkovStage",
    "StageExposure",
    "StageStays",
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


class StageStays(BaseModel):
    """How long deals stayed in one open stage, in whole days, and how each stay ended.

    Attributes:
        stage: the open stage key.
        exits: ``(days, target state, count)``: stays that ended after ``days`` whole days
            by a move to ``target``, in (days, state) order.
        censored: ``(days, count)``: stays still going on at ``as_of``, ``days`` so far.
        entered: ``(days, count)``: from which age (whole days) each stay is at risk: 0,
            or with a ``lookback`` its age when the window began.

    Example:
        >>> from pipelinekit import demo
        >>> c = count_transitions(demo.demo_history(opportunities=30, seed=2),
        ...                       as_of="2024-06-30T00:00:00Z")
        >>> s = c.stays[0]
        >>> s.stage, sum(n for *_, n in s.exits) == c.exposure[0].exits
        ('prospecting', True)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: str
    exits: tuple[tuple[int, str, int], ...] = ()
    censored: tuple[tuple[int, int], ...] = ()
    entered: tuple[tuple[int, int], ...] = ()


class TransitionCounts(BaseModel):
    """Counts of stage changes up to ``as_of``: a sum, so it merges over partitions.

    Attributes:
        as_of: the cut-off; nothing later was counted.
        states: the open stage keys in funnel order, then :data:`WON_STATE`,
            :data:`LOST_STATE`.
        transitions: every observed (source, target) pair with its count, in state order.
        exposure: per open stage, the time spent in it and the number of exits.
        stays: per open stage, the stays by whole days and outcome (the semi-Markov timing).
        lookback: stays count only if still going on within this span before ``as_of``
            (``None``: all of them); the transitions and exposure are always all of them.

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
    stays: tuple[StageStays, ...] = ()
    lookback: timedelta | None = None

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
        require_same("transition counts", self, other, ("as_of", "states", "lookback"))
        counts: dict[tuple[str, str], int] = {}
        for t in (*self.transitions, *other.transitions):
            counts[(t.source, t.target)] = counts.get((t.source, t.target), 0) + t.count
        time: dict[str, tuple[int, int]] = {}
        for e in (*self.exposure, *other.exposure):
            us, n = time.get(e.stage, (0, 0))
            time[e.stage] = (us + e.microseconds, n + e.exits)
        stays = _Stays()
        for st in (*self.stays, *other.stays):
            for days, target, n in st.exits:
                stays.exit(st.stage, days, target, n)
            for days, n in st.censored:
                stays.censor(st.stage, days, n)
            for days, n in st.entered:
                stays.enter(st.stage, days, n)
        return _counts(self.as_of, self.states, counts, time, stays, self.lookback)


def count_transitions(
    history: History, *, as_of: Instant, lookback: timedelta | None = None
) -> TransitionCounts:
    """Count the stage changes of ``history.until(as_of)``, won and lost stages merged.

    Only moves out of open stages are counted (won and lost are absorbing). A stay still
    going on at ``as_of`` adds its time so far to its stage's exposure but no exit, and is
    a censored stay of :attr:`TransitionCounts.stays`.

    With ``lookback``, the stays are those of the recent past only: a stay that ended
    before ``as_of − lookback`` is left out, and one that began before it counts as at risk
    only from the age it had then (``StageStays.entered``: left truncation), so the hazards
    are those of the last ``lookback``.

    Raises:
        ArgumentError: ``lookback`` is not ``None`` or a positive timedelta.

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
    _check_lookback(lookback)
    pipeline = history.until(when).as_of(when)
    scheme = pipeline.scheme
    states = _states(scheme)
    counts: dict[tuple[str, str], int] = {}
    time: dict[str, tuple[int, int]] = {}
    stays = _Stays()
    one = timedelta(microseconds=1)
    day = timedelta(days=1)
    start = None if lookback is None else when - lookback
    for opp in pipeline.values():
        path = opp.path
        for i, visit in enumerate(path):
            if not scheme.stage(visit.stage).is_open:
                continue
            left = visit.exited_at if visit.exited_at is not None else when
            us, n = time.get(visit.stage, (0, 0))
            exited = visit.exited_at is not None and i + 1 < len(path)
            stay = left - visit.entered_at
            time[visit.stage] = (us + stay // one, n + int(exited))
            if exited:
                target = _state(scheme, path[i + 1].stage)
                counts[(visit.stage, target)] = counts.get((visit.stage, target), 0) + 1
            if start is not None and left < start:
                continue  # over before the window: not a stay of the recent past
            since = 0 if start is None else max(0, (start - visit.entered_at) // day)
            stays.enter(visit.stage, since, 1)
            if exited:
                stays.exit(visit.stage, stay // day, target, 1)
            else:
                stays.censor(visit.stage, stay // day, 1)
    return _counts(when, states, counts, time, stays, lookback)


def _check_lookback(lookback: object) -> timedelta | None:
    """``None`` or a positive timedelta, else ``ArgumentError("lookback")``."""
    if lookback is not None and (not isinstance(lookback, timedelta) or lookback <= timedelta(0)):
        raise ArgumentError("lookback", f"expected None or a positive timedelta, got {lookback!r}")
    return lookback


class _Stays:
    """Stays being counted: per stage, exits by (days, target) and censored stays by days."""

    def __init__(self) -> None:
        self.exits: dict[str, dict[tuple[int, str], int]] = {}
        self.censored: dict[str, dict[int, int]] = {}
        self.entered: dict[str, dict[int, int]] = {}

    def exit(self, stage: str, days: int, target: str, n: int) -> None:
        bucket = self.exits.setdefault(stage, {})
        bucket[(days, target)] = bucket.get((days, target), 0) + n

    def censor(self, stage: str, days: int, n: int) -> None:
        bucket = self.censored.setdefault(stage, {})
        bucket[days] = bucket.get(days, 0) + n

    def enter(self, stage: str, days: int, n: int) -> None:
        bucket = self.entered.setdefault(stage, {})
        bucket[days] = bucket.get(days, 0) + n

    def rows(self, order: dict[str, int]) -> tuple[StageStays, ...]:
        stages = sorted(set(self.exits) | set(self.censored), key=order.__getitem__)
        return tuple(
            StageStays(
                stage=s,
                exits=tuple(
                    (d, t, n)
                    for (d, t), n in sorted(
                        self.exits.get(s, {}).items(), key=lambda kv: (kv[0][0], order[kv[0][1]])
                    )
                ),
                censored=tuple(sorted(self.censored.get(s, {}).items())),
                entered=tuple(sorted(self.entered.get(s, {}).items())),
            )
            for s in stages
        )


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
    stays: _Stays,
    lookback: timedelta | None,
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
        stays=stays.rows(order),
        lookback=lookback,
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
    """What the chain and the stays say about one open stage.

    Attributes:
        stage: the open stage key.
        exits: how many times deals left the stage (the evidence).
        stays: how many stays it had (those still going on at ``as_of`` included).
        win_probability: the chance a deal entering the stage is ever won, by the stays'
            hazards: deals that stay for good count as not won (plus the weight of any
            evidence-less stage a deal may end up in).
        stay_probability: the chance a deal entering the stage ends up staying for good in
            some stage (older than every stay that ended there).
        longest_exit_days: the longest stay, in whole days, that ended with a move: deals
            there for longer count as staying.
        expected_steps: expected stage changes until won or lost, in the jump chain (which
            assumes every deal leaves some day; ``None``: no evidence).
        expected_days: expected days until won or lost, in the jump chain.
        expected_days_to_win: expected days until won, given it is won, in the jump chain.
        holding_days: mean days per stay in the stage (censored estimate).
        source: ``"chain"`` or ``"weight"`` (no deal ever left the stage, or no observed
            path leads from it to won or lost).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: str
    exits: int
    stays: int = 0
    win_probability: float
    stay_probability: float | None = None
    longest_exit_days: int | None = None
    expected_steps: float | None = None
    expected_days: float | None = None
    expected_days_to_win: float | None = None
    holding_days: float | None = None
    source: str = "chain"


class MarkovEvidence(BaseModel):
    """What a Markov forecast learns: the transition counts and stays, and new business.

    Both parts are sums over opportunities, so the evidence of partitions merges into
    exactly the evidence of the whole (pass it, merged, as ``MarkovForecast(learned=...)``).

    Attributes:
        counts: the :class:`TransitionCounts` (transitions, exposure, stays).
        new_business: what deals created after past origins won, per lag (``None`` when
            the forecaster was made with ``new_business=False``).

    Example:
        >>> from pipelinekit import demo
        >>> h, t = demo.demo_history(opportunities=40, seed=3), "2024-10-15T00:00:00Z"
        >>> a, b = h.partition(2)
        >>> learner = MarkovForecast().learner()
        >>> learner.compute(a, as_of=t).merge(learner.compute(b, as_of=t)) == learner.compute(
        ...     h, as_of=t)
        True
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    counts: TransitionCounts
    new_business: NewBusinessEvidence | None = None

    def merge(self, other: MarkovEvidence) -> MarkovEvidence:
        """The evidence of both sets of opportunities.

        Raises:
            ArgumentError: another ``as_of``, states, grid, or one without new business.
        """
        if not isinstance(other, MarkovEvidence):
            raise ArgumentError("other", f"expected MarkovEvidence, got {type(other).__name__}")
        if (self.new_business is None) != (other.new_business is None):
            raise ArgumentError(
                "other", "cannot merge Markov evidence with and without new business"
            )
        counts = self.counts.merge(other.counts)
        new = (
            self.new_business.merge(other.new_business)
            if self.new_business is not None and other.new_business is not None
            else None
        )
        return MarkovEvidence(counts=counts, new_business=new)


class MarkovForecastResult(Forecast):
    """A :class:`~pipelinekit.forecasts.result.Forecast` with the chain's stage table.

    Attributes:
        stages: per open stage: win and stay probabilities, expected steps and days.
        transitions: the counts the chain was estimated from.
        new_business: per horizon period, the expected revenue of deals not open yet
            (``insufficient``: no evidence at that lag).
        fallback: why stage weights and close dates were used (``None``: they were not).
        notes: other caveats.
    """

    stages: tuple[MarkovStage, ...] = ()
    transitions: TransitionCounts | None = None
    new_business: tuple[NewBusinessLag, ...] = ()
    fallback: str | None = None
    notes: tuple[str, ...] = ()

    def stages_records(self) -> list[dict[str, Any]]:
        """The stage table as rows of plain values."""
        return [s.model_dump() for s in self.stages]

    def merge(self, other: Forecast) -> MarkovForecastResult:
        """Add a forecast made with the **same evidence** (see ``HistoricalForecastResult.merge``).

        Won and expected revenue add; new business belongs to the shared evidence and is
        kept once.

        Raises:
            ArgumentError: ``other`` used other evidence, method, ``as_of`` or currency.
        """
        if not isinstance(other, MarkovForecastResult) or (
            other.stages,
            other.new_business,
            other.fallback,
        ) != (self.stages, self.new_business, self.fallback):
            raise ArgumentError(
                "other",
                "Markov forecasts only merge when they used the same evidence; merge the "
                "MarkovEvidence of the partitions and pass it as learned= instead",
            )
        merged = super().merge(other)
        new = {(r.bucket, r.group): r.new for r in (*other.rows, *self.rows)}
        rows = tuple(r.model_copy(update={"new": new[r.bucket, r.group]}) for r in merged.rows)
        return self.model_copy(
            update={"rows": rows, "deals": merged.deals, "currency": merged.currency}
        )


class MarkovLearner:
    """A calculator whose result is the :class:`MarkovEvidence` a Markov forecast learns.

    ``MarkovForecast(...).learner()`` makes one; it computes per partition like any
    mergeable calculator (``pipelinekit.distributed``).

    Example:
        >>> from pipelinekit import demo
        >>> h = demo.demo_history(opportunities=20, seed=1)
        >>> e = MarkovForecast().learner().compute(h, as_of="2024-06-30T00:00:00Z")
        >>> e.counts == count_transitions(h, as_of="2024-06-30T00:00:00Z")
        True
    """

    def __init__(self, forecaster: MarkovForecast) -> None:
        self._forecaster = forecaster

    def __repr__(self) -> str:
        return f"MarkovLearner({self._forecaster!r})"

    def compute(self, history: History, *, as_of: Instant) -> MarkovEvidence:
        """:func:`count_transitions` and the new-business sums of ``history.until(as_of)``."""
        return self._forecaster.learn(history, as_of=as_of)


class MarkovForecast:
    """Forecast with a semi-Markov chain of stage changes and stays learned before ``as_of``.

    Each open deal's chance of being won in each horizon period follows from the stays of
    its stage **given how long it has been there** and from the chain of the stages it may
    move to (see the module documentation); its expected value ``amount × chance of ever
    being won`` is spread over the periods by those chances, the rest in ``later``.
    ``new`` is the expected revenue of deals not open yet, learned per lag from past
    periods (see :mod:`pipelinekit.forecasts.new_business`).

    Args:
        period, horizon, currency, rates, tz: as for
            :class:`~pipelinekit.forecasts.weighted.WeightedForecast`.
        new_business: include the ``new`` column (learned from past periods).
        new_business_periods: how many past origins each lag's mean uses (the most recent).
        lookback: learn the stays (the timing and chances) from the last ``lookback`` only
            (left-truncated: see :func:`count_transitions`); ``None``: all history.
        learned: :class:`MarkovEvidence` to forecast with instead of learning from the
            history given to :meth:`compute` (which then supplies only the deals to place):
            typically the evidence of every partition, merged, so that the forecasts of the
            partitions add up to the forecast of the whole. It must have been learned at
            the same ``as_of``, on the same scheme's stages, with the same period grid and
            at least ``horizon`` lags of new business.

    Raises:
        ArgumentError: a bad argument, named in ``.argument``.

    Attributes (after :meth:`compute`):
        counts_: the :class:`TransitionCounts`; chain_: the :class:`MarkovChain`.

    Example:
        >>> from pipelinekit import demo
        >>> f = MarkovForecast(horizon=3).compute(
        ...     demo.demo_history(opportunities=60, seed=42), as_of="2024-09-30T00:00:00+00:00")
        >>> s = f.stages[0]
        >>> s.stage, s.exits, round(s.win_probability, 3)
        ('prospecting', 39, 0.422)
        >>> d = f.deals[0]
        >>> d.stage, round(d.win_probability, 3), [round(p, 3) for p in d.periods]
        ('id-decision-makers', 0.569, [0.0, 0.107, 0.267])
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
        new_business: bool = True,
        new_business_periods: int = 6,
        learned: MarkovEvidence | None = None,
        lookback: timedelta | None = None,
    ) -> None:
        self.lookback = _check_lookback(lookback)
        self._placement = Placement.validate(
            period=period,
            horizon=horizon,
            group_by=None,
            currency=currency,
            rates=rates,
            tz=tz,
            categories=None,
        )
        if not isinstance(new_business, bool):
            raise ArgumentError("new_business", f"expected True or False, got {new_business!r}")
        check_count("new_business_periods", new_business_periods, low=1)
        if learned is not None and not isinstance(learned, MarkovEvidence):
            raise ArgumentError(
                "learned",
                f"expected MarkovEvidence (from MarkovForecast().learner()) or None, got "
                f"{type(learned).__name__}",
            )
        self.period = period
        self.horizon = horizon
        self.currency = currency
        self.rates = rates
        self.tz = tz
        self.new_business = new_business
        self.new_business_periods = new_business_periods
        self.learned = learned

    def __repr__(self) -> str:
        learned = "" if self.learned is None else ", learned=<MarkovEvidence>"
        return (
            f"MarkovForecast(period={self._placement.kind.spec!r}, "
            f"horizon={self.horizon!r}{learned})"
        )

    def learner(self) -> MarkovLearner:
        """A calculator of the :class:`MarkovEvidence` this forecaster learns, to compute
        over partitions (:func:`~pipelinekit.calculators.compute_partitioned`,
        ``pipelinekit.distributed``) and pass, merged, as ``learned``.

        Example:
            >>> from pipelinekit import demo
            >>> from pipelinekit.calculators import compute_partitioned
            >>> h, when = demo.demo_history(opportunities=60, seed=42), "2024-09-30T00:00:00Z"
            >>> parts = h.partition(3)
            >>> evidence = compute_partitioned(MarkovForecast().learner(), parts, as_of=when)
            >>> by_parts = compute_partitioned(
            ...     MarkovForecast(learned=evidence), parts, as_of=when)
            >>> by_parts == MarkovForecast().compute(h, as_of=when)
            True
        """
        return MarkovLearner(self)

    def learn(self, history: History, *, as_of: Instant) -> MarkovEvidence:
        """The evidence of ``history.until(as_of)``: transition counts, stays, new business.

        Raises:
            CurrencyError: won amounts in several currencies without ``currency``/``rates``.
        """
        when = instant(as_of, argument="as_of")
        with bulk_work():
            counts = count_transitions(history, as_of=when, lookback=self.lookback)
            new = None
            if self.new_business:
                p = self._placement
                new = learn_new_business(
                    history,
                    as_of=when,
                    kind=p.kind,
                    lags=p.horizon,
                    tz=p.tz,
                    currency=p.currency,
                    rates=p.rates,
                )
        return MarkovEvidence(counts=counts, new_business=new)

    def compute(self, history: History, *, as_of: Instant) -> MarkovForecastResult:
        """Learn from ``history.until(as_of)`` (or use ``learned``) and forecast the horizon.

        Raises:
            ArgumentError: (``scheme``) a stage weight is needed (no evidence) but missing;
                (``learned``) evidence learned at another ``as_of``, on other stages, on
                another period grid or with fewer lags.
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
        evidence = self.learn(history, as_of=when) if self.learned is None else self._check(when)
        counts = evidence.counts
        if counts.states != _states(scheme):
            raise ArgumentError(
                "learned",
                f"the evidence was counted on states {list(counts.states)}; this history's "
                f"scheme has {list(_states(scheme))}",
            )
        chain = MarkovChain.from_counts(counts)
        self.counts_, self.chain_ = counts, chain
        timing = _timing(chain, counts, scheme, horizon)
        stages, notes = _stage_table(chain, counts, scheme, timing)
        fallback = None
        if not counts.transitions:
            fallback = (
                "no stage change before as_of: win probabilities are the stage weights and "
                "open deals are placed by their expected close dates"
            )
        table = {s.stage: s for s in stages}
        allocations: list[dict[str, Decimal]] = []
        deals: list[DealForecast] = []
        first = {p.label: i for i, p in enumerate(layout.periods)}
        first[OVERDUE] = first[NO_CLOSE_DATE] = 0  # due now: a forecast of this period
        cache: dict[tuple[str, float], tuple[float, tuple[float, ...]]] = {}
        for placed in layout.open:
            opp = placed.opportunity
            row = table[opp.stage]
            if row.source == "weight":
                if opp.stage_weight is None:
                    raise ArgumentError(
                        "scheme",
                        f"no deal ever left stage {opp.stage!r} and it has no weight to fall "
                        "back on",
                    )
                value = _fine(placed.amount, row.win_probability)
                allocations.append({placed.bucket: value})
                periods = [0.0] * len(layout.periods)
                if placed.bucket in first:
                    periods[first[placed.bucket]] = row.win_probability
                deals.append(
                    _deal(opp.id, opp.stage, placed.amount, row.win_probability, value,
                          placed.bucket, tuple(periods))
                )  # fmt: skip
                continue
            age = days_between(pipeline[opp.id].stage_entered_at, when)
            key = (opp.stage, age)
            if key not in cache:
                cache[key] = timing.deal(opp.stage, age) or (0.0, (0.0,) * len(horizon.ends))
            ever, by_end = cache[key]
            allocation, bucket = _spread(placed.amount, ever, by_end, horizon.labels)
            allocations.append(allocation)
            deals.append(
                _deal(opp.id, opp.stage, placed.amount, ever, total(allocation.values()),
                      bucket, _increments(by_end))
            )  # fmt: skip
        lags: tuple[NewBusinessLag, ...] = ()
        new: dict[str, Decimal] = {}
        currency = layout.currency
        if evidence.new_business is not None:
            lags = estimate_new_business(
                evidence.new_business,
                layout.periods,
                tz=self._placement.tz,
                periods_used=self.new_business_periods,
            )
            new = {x.bucket: x.mean for x in lags}
            note = no_evidence_note(lags)
            if note is not None:
                notes.append(note)
            if currency is None and any(new.values()):
                currency = evidence.new_business.currency
        return MarkovForecastResult(
            method="markov",
            as_of=when,
            currency=currency,
            rows=forecast_rows(horizon, layout.won, allocations, new),
            deals=tuple(deals),
            stages=stages,
            transitions=counts,
            new_business=lags,
            fallback=fallback,
            notes=tuple(notes),
        )

    def _check(self, when: datetime) -> MarkovEvidence:
        learned = self.learned
        assert learned is not None  # only called with learned evidence
        p = self._placement
        if learned.counts.as_of != when:
            raise ArgumentError(
                "learned",
                f"the evidence was learned at as_of={learned.counts.as_of.isoformat()}; this "
                f"forecast is at {when.isoformat()}",
            )
        if learned.counts.lookback != self.lookback:
            raise ArgumentError(
                "learned",
                f"the evidence was learned with lookback={learned.counts.lookback}; this "
                f"forecaster has lookback={self.lookback}",
            )
        new = learned.new_business
        if self.new_business and new is None:
            raise ArgumentError(
                "learned", "the evidence has no new business; learn it with new_business=True"
            )
        if self.new_business and new is not None:
            expected = (p.kind.spec, str(p.tz))
            if (new.period, new.tz) != expected or new.lags < p.horizon:
                raise ArgumentError(
                    "learned",
                    f"the new business was learned on the {new.period!r} grid in {new.tz} "
                    f"with {new.lags} lags; this forecast needs the {expected[0]!r} grid in "
                    f"{expected[1]} with {p.horizon}",
                )
        if not self.new_business and new is not None:
            return learned.model_copy(update={"new_business": None})
        return learned


_ZERO = Decimal(0)
QUANTUM = Decimal("0.000001")
"""The precision of the per-deal expected values (a millionth of the currency unit)."""


def _fine(amount: Decimal, chance: float) -> Decimal:
    """``amount × chance`` to :data:`QUANTUM` (exact: no 28-digit rounding first)."""
    return EXACT.quantize(EXACT.multiply(amount, Decimal(repr(chance))), QUANTUM)


def _deal(
    oid: str,
    stage: str,
    amount: Decimal,
    probability: float,
    expected: Decimal,
    bucket: str,
    periods: tuple[float, ...],
) -> DealForecast:
    return DealForecast(
        opportunity_id=oid,
        stage=stage,
        amount=amount,
        win_probability=probability,
        expected=expected,
        bucket=bucket,
        periods=periods,
    )


def _increments(by_end: tuple[float, ...]) -> tuple[float, ...]:
    """Chances per period from the chances of being won by each period end."""
    out: list[float] = []
    previous = 0.0
    for p in by_end:
        out.append(max(0.0, p - previous))
        previous = max(previous, p)
    return tuple(out)


def _spread(
    amount: Decimal, ever: float, by_end: tuple[float, ...], labels: tuple[str, ...]
) -> tuple[dict[str, Decimal], str]:
    """Split ``amount × ever`` over the periods by the chances of being won by each end.

    Cumulative values are rounded to millionths (:data:`QUANTUM`: cents would round the
    small chances of small deals away), so every share is >= 0 and they add up to the
    deal's expected value exactly; ``later`` takes what is not won within the horizon.
    Also returns the bucket with the largest share (``later`` for a deal worth nothing).
    """
    expected = _fine(amount, ever)
    out: dict[str, Decimal] = {}
    given = _ZERO
    for label, p in zip(labels, by_end, strict=True):
        reached = min(expected, _fine(amount, p))
        if reached > given:
            out[label] = EXACT.subtract(reached, given)
            given = reached
    if expected > given:
        out[LATER] = EXACT.subtract(expected, given)
    bucket = max(out, key=lambda k: out[k]) if out else LATER
    return out, bucket


def _timing(
    chain: MarkovChain, counts: TransitionCounts, scheme: StageScheme, horizon: Horizon
) -> Timing:
    curves = {
        s.stage: StageCurve.of(s.exits, s.censored, s.entered)
        for s in counts.stays
        if s.stage in chain.transient
    }
    stuck = {
        z: float(_weight(scheme, z)) for z in chain.absorbing if z not in (WON_STATE, LOST_STATE)
    }
    return Timing.build(curves, won=WON_STATE, stuck=stuck, ends=horizon.ends)


def _weight(scheme: StageScheme, key: str) -> Fraction:
    w = scheme.stage(key).weight
    return Fraction(0) if w is None else Fraction(w) / 100


def _stage_table(
    chain: MarkovChain, counts: TransitionCounts, scheme: StageScheme, timing: Timing
) -> tuple[tuple[MarkovStage, ...], list[str]]:
    exits = {e.stage: e.exits for e in counts.exposure}
    holding = {e.stage: e.mean_days for e in counts.exposure}
    stays = {
        s.stage: (sum(n for *_, n in s.exits) + sum(n for _, n in s.censored), s)
        for s in counts.stays
    }
    steps = chain.expected_steps()
    days = chain.expected_days()
    to_win = chain.expected_days_to(WON_STATE)
    stuck = [s for s in chain.absorbing if s not in (WON_STATE, LOST_STATE)]
    rows: list[MarkovStage] = []
    notes: list[str] = []
    staying: list[str] = []
    for s in scheme.open_stages:
        mean = holding.get(s.key)
        seen, record = stays.get(s.key, (0, None))
        longest = max((d for d, *_ in record.exits), default=None) if record else None
        common = {
            "stage": s.key,
            "exits": exits.get(s.key, 0),
            "stays": seen,
            "longest_exit_days": longest,
            "holding_days": None if mean is None else float(mean),
        }
        if s.key in chain.transient:
            i = chain.transient.index(s.key)
            t = to_win[i]
            rows.append(
                MarkovStage(
                    **common,
                    win_probability=timing.ever[s.key],
                    stay_probability=timing.staying[s.key],
                    expected_steps=float(steps[i]),
                    expected_days=float(days[i]),
                    expected_days_to_win=None if t is None else float(t),
                )
            )
            if (
                record is not None
                and longest is not None
                and any(d > longest for d, _ in record.censored)
            ):
                staying.append(f"{s.key} ({longest} days)")
        else:
            rows.append(
                MarkovStage(
                    **common, win_probability=float(_weight(scheme, s.key)), source="weight"
                )
            )
    if stuck and counts.transitions:
        notes.append(
            f"no observed path from {stuck} to won or lost: deals there count with the "
            "stage weight and are placed by their expected close date"
        )
    if staying:
        notes.append(
            "open deals that have stayed longer than any stay that ended in their stage count "
            f"as staying, with no chance of being won: {', '.join(staying)}"
        )
    return tuple(rows), notes
