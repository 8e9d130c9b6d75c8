"""Cumulative incidence of winning with competing outcomes (private helpers).

Deals that entered a stage end won, end lost, or are still open at ``as_of``. A deal still
open is *censored*: it was at risk of both outcomes for as long as it was observed, and
nothing is known after that. The Aalen-Johansen estimator turns such data into

- ``S(t)``: the chance a deal is still open ``t`` days after entering the stage, and
- ``F(t)``: the chance it has been won by then (the cumulative incidence of winning),

without dropping the open deals (which would make every rate the rate of the fast deals) and
without counting them as losses. A deal that has been open ``a`` days is won within the next
``x`` days with chance ``(F(a + x) − F(a)) / S(a)``, eventually with ``(F(∞) − F(a)) / S(a)``
(``∞``: the longest follow-up seen; wins later than any seen are not foreseen).

Example:
    >>> c = Incidence.of([(2.0, WON), (3.0, LOST), (5.0, OPEN), (8.0, WON)])
    >>> c.won_by(10.0), c.open_at(0.0), c.open_at(4.0)
    (0.75, 1.0, 0.5)
    >>> c.won_after(4.0)  # open after 4 days: the one that closed later was won
    1.0
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

OPEN = 0
"""Outcome code of a deal still open at ``as_of`` (censored)."""
WON = 1
"""Outcome code of a won deal."""
LOST = 2
"""Outcome code of a lost deal."""


@dataclass(frozen=True)
class Incidence:
    """The Aalen-Johansen step functions of one stage: at each distinct time, ``S`` and
    ``F`` just after it, and how many deals were still at risk just before it."""

    times: tuple[float, ...]
    survival: tuple[float, ...]
    incidence: tuple[float, ...]
    at_risk: tuple[int, ...]
    deals: int

    @classmethod
    def of(cls, outcomes: Iterable[tuple[float, int]]) -> Incidence:
        """The estimate from ``(days in the stage until the outcome or as_of, outcome)``."""
        ordered = sorted(outcomes)
        n = len(ordered)
        times: list[float] = []
        opens: list[float] = []
        wins: list[float] = []
        risk: list[int] = []
        survival, incidence = 1.0, 0.0
        i = 0
        while i < n:
            t = ordered[i][0]
            at_risk = n - i
            won = lost = gone = 0
            while i < n and ordered[i][0] == t:
                code = ordered[i][1]
                won += code == WON
                lost += code == LOST
                gone += 1
                i += 1
            if won or lost:
                incidence += survival * won / at_risk
                survival *= 1 - (won + lost) / at_risk
                times.append(t)
                opens.append(survival)
                wins.append(incidence)
                risk.append(at_risk)
        return cls(tuple(times), tuple(opens), tuple(wins), tuple(risk), n)

    def _index(self, t: float) -> int:
        return bisect_right(self.times, t)

    def open_at(self, t: float) -> float:
        """``S(t)``: the chance of being still open ``t`` days after entering."""
        k = self._index(t)
        return 1.0 if k == 0 else self.survival[k - 1]

    def won_by(self, t: float) -> float:
        """``F(t)``: the chance of having been won within ``t`` days of entering."""
        k = self._index(t)
        return 0.0 if k == 0 else self.incidence[k - 1]

    def won_after(self, age: float) -> float:
        """The chance that a deal open ``age`` days is eventually won (0 when no deal of
        the evidence stayed open that long)."""
        still = self.open_at(age)
        if still <= 0:
            return 0.0
        final = self.incidence[-1] if self.incidence else 0.0
        return max(0.0, (final - self.won_by(age)) / still)

    def won_within(self, age: float, start: float, end: float) -> float:
        """The chance that a deal open ``age`` days is won between ``start`` and ``end``
        days from now."""
        still = self.open_at(age)
        if still <= 0 or end <= start:
            return 0.0
        return max(0.0, (self.won_by(age + end) - self.won_by(age + start)) / still)

    def oldest_supported(self, minimum: int) -> float:
        """The greatest age at which at least ``minimum`` deals of the evidence were still
        open (``0.0`` when fewer than ``minimum`` deals in all)."""
        # deals still open at age a: those whose time is > a
        if self.deals < minimum or minimum <= 0:
            return float("inf") if minimum <= 0 else 0.0
        return _kth_largest_time(self, minimum)


def _kth_largest_time(c: Incidence, k: int) -> float:
    # times of events only are kept; the at-risk counts before each event time bound it
    best = 0.0
    for t, n in zip(c.times, c.at_risk, strict=True):
        if n >= k:
            best = t
    return best


class ByStay:
    """The incidence of winning among the deals that stayed in a stage longer than a given
    age: what a deal still in the stage after ``age`` days can expect.

    Conditioning on *still in the stage* rather than *still open* matters: long after
    entering a stage, the deals still open are mostly ones that moved on to later stages,
    whose chances are better than those of a deal that has not moved. Each entry is
    ``(stay, days to the outcome, outcome)``: how long the deal's last stay in the stage
    lasted (up to ``as_of`` if it is still there), and when and how it ended (or ``OPEN``).

    Example:
        >>> s = ByStay([(5.0, 20.0, WON), (5.0, 9.0, LOST), (40.0, 60.0, LOST), (50.0, 50.0, OPEN)])
        >>> s.at(0.0).won_by(100.0)  # of all four: one won, at 20 days
        0.25
        >>> s.at(10.0).won_by(100.0)  # still in the stage after 10 days: none was won
        0.0
    """

    def __init__(self, entries: Iterable[tuple[float, float, int]]) -> None:
        self._entries = sorted(entries)
        self._stays = [stay for stay, _, _ in self._entries]
        self._cache: dict[int, Incidence] = {}

    @property
    def deals(self) -> int:
        """How many deals were in the stage."""
        return len(self._entries)

    def staying(self, age: float) -> int:
        """How many deals stayed longer than ``age`` days."""
        return len(self._stays) - bisect_right(self._stays, age)

    def at(self, age: float) -> Incidence:
        """The incidence (time from entering the stage) among the deals that stayed longer
        than ``age`` days."""
        first = bisect_right(self._stays, age)
        found = self._cache.get(first)
        if found is None:
            found = self._cache[first] = Incidence.of(
                (time, code) for _, time, code in self._entries[first:]
            )
        return found

    def supported_age(self, age: float, minimum: int) -> float:
        """``age``, or the greatest age at which ``minimum`` deals still stayed when fewer
        stayed as long as ``age`` (0 when fewer than ``minimum`` deals in all)."""
        if self.staying(age) >= minimum:
            return age
        if len(self._stays) < minimum or minimum <= 0:
            return 0.0
        # the minimum-th longest stay: just below it, exactly ``minimum`` deals stay longer
        return max(0.0, self._stays[len(self._stays) - minimum] - 1e-9)
