"""How long deals stay in a stage and where they go next, given how long they have stayed.

The semi-Markov timing of the Markov forecast (private helpers). Every stay in an open stage
before ``as_of`` is evidence: a stay that ended (after ``d`` whole days, towards a target
state) or one still going on at ``as_of`` (censored after ``d`` days). Per stage, with
``n_k`` the stays that lasted at least ``k`` whole days and ``d_{k,t}`` those that left for
``t`` on day ``k``, the hazard of leaving for ``t`` on day ``k`` is ``d_{k,t} / n_k``
(Aalen-Johansen: Kaplan-Meier with competing exits). A censored stay counts as at risk up to
its day and then drops out; it is never treated as a deal that left. After the last day any
deal was seen to leave, the hazard is 0: the deals that stay longer are, as far as the
evidence goes, deals that stay (the "zombies" CRMs keep open for years), and their chance of
leaving is not redistributed to anyone.

A deal that has spent ``a`` days in stage ``s`` follows the hazards from day ``⌊a⌋`` on
(conditioned on having stayed that long); a departure on day ``k`` is placed at ``k + 0.5``
days after entering, ``k + 0.5 − a`` days after ``as_of`` (at least 0). Once it enters another
stage it starts afresh there: ``W_u(y)``, the chance of being won within ``y`` days of
entering ``u``, solves the renewal equations

    W_u(y) = Σ_k f_{u,won}(k) [k + ½ ≤ y] + Σ_v Σ_k f_{u,v}(k) W_v(y − k − ½)

(``f`` the unconditional sub-densities of the stays), computed on a grid of ``step`` days
covering the horizon (one day, coarser for horizons beyond ``MAX_STEPS`` days: departures
are split linearly between the two nearest grid points, and ``W`` is interpolated linearly).
The chance of ever being won uses the totals of the same sub-densities: a linear system, with
the mass that never leaves counted as staying.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

MAX_STEPS = 120
"""The most grid points the timing of a horizon uses (one a day up to 120 days)."""

Exit = tuple[int, str, int]
"""(whole days in the stage, target state, count)."""
Censored = tuple[int, int]
"""(whole days in the stage so far, count)."""


@dataclass(frozen=True)
class StageCurve:
    """The competing-exit hazards of one stage by whole days in it.

    ``days`` are the days on which some stay ended; ``survival[i]`` is the chance of still
    being in the stage at the start of ``days[i]`` (``survival[-1]``: after the last exit);
    ``exits[i]`` the hazards of day ``days[i]`` per target.
    """

    days: tuple[int, ...]
    exits: tuple[tuple[tuple[str, float], ...], ...]
    survival: tuple[float, ...]

    @classmethod
    def of(
        cls,
        exits: Iterable[Exit],
        censored: Iterable[Censored],
        entered: Iterable[Censored] = (),
    ) -> StageCurve:
        """Hazards from the stays: ``exits`` that ended, ``censored`` still going on.

        Example:
            >>> c = StageCurve.of([(1, "won", 1), (3, "lost", 1)], [(2, 2)])
            >>> c.days, c.survival
            ((1, 3), (1.0, 0.75, 0.0))
        """
        by_day: dict[int, dict[str, int]] = {}
        ended: dict[int, int] = {}
        for day, target, count in exits:
            targets = by_day.setdefault(day, {})
            targets[target] = targets.get(target, 0) + count
            ended[day] = ended.get(day, 0) + count
        left: dict[int, int] = dict(ended)
        for day, count in censored:
            left[day] = left.get(day, 0) + count
        joined = dict(entered) or {0: sum(left.values())}
        at_risk = 0
        days: list[int] = []
        hazards: list[tuple[tuple[str, float], ...]] = []
        survival = [1.0]
        for day in sorted(set(left) | set(joined)):
            at_risk += joined.get(day, 0)
            if day in by_day and at_risk > 0:
                days.append(day)
                hazards.append(tuple((t, n / at_risk) for t, n in sorted(by_day[day].items())))
                survival.append(survival[-1] * (1 - ended[day] / at_risk))
            at_risk -= left.get(day, 0)
        return cls(tuple(days), tuple(hazards), tuple(survival))

    def first(self, day: int) -> int:
        """The index of the first exit day on or after ``day``."""
        return bisect_left(self.days, day)

    def totals(self) -> dict[str, float]:
        """The chance of ever leaving for each target, from entering the stage."""
        out: dict[str, float] = {}
        for s, hazards in zip(self.survival, self.exits, strict=False):
            for target, h in hazards:
                out[target] = out.get(target, 0.0) + s * h
        return out


@dataclass(frozen=True)
class Timing:
    """When and whether deals are won, by stage and age, up to the horizon's period ends.

    Args (of :meth:`build`):
        curves: the transient stages' curves.
        won: the won state; stuck: absorbing open stages (no evidence) and the weight
            (chance of winning) a deal reaching one counts with; no timing is known there.
        ends: the period ends, in days after ``as_of``.
    """

    curves: Mapping[str, StageCurve]
    won: str
    stuck: Mapping[str, float]
    ends: tuple[float, ...]
    step: float
    grid: Mapping[str, tuple[float, ...]]
    ever: Mapping[str, float]
    staying: Mapping[str, float]
    suffix: Mapping[str, tuple[float, ...]]

    @classmethod
    def build(
        cls,
        curves: Mapping[str, StageCurve],
        *,
        won: str,
        stuck: Mapping[str, float],
        ends: Sequence[float],
    ) -> Timing:
        """Solve the renewal equations on the grid and the chances of ever being won."""
        names = tuple(curves)
        index = {s: i for i, s in enumerate(names)}
        last = max(ends) if ends else 0.0
        step = max(1.0, float(math.ceil(last / MAX_STEPS)))
        size = max(1, math.ceil(last / step)) + 1
        totals = {s: curves[s].totals() for s in names}
        # chance of ever being won / of staying for good, from entering each stage
        moves = [[totals[s].get(v, 0.0) for v in names] for s in names]
        gain = [
            totals[s].get(won, 0.0) + sum(totals[s].get(z, 0.0) * w for z, w in stuck.items())
            for s in names
        ]
        stays = [1.0 - sum(totals[s].values()) for s in names]
        ever = _solve(moves, gain)
        staying = _solve(moves, stays)
        grid = _renewal(curves, names, index, won, step, size)
        ever_of = dict(zip(names, ever, strict=True))
        suffix: dict[str, tuple[float, ...]] = {}
        for s in names:
            curve = curves[s]
            value = [
                s_i * sum(h * _worth(t, won, ever_of, stuck) for t, h in hazards)
                for s_i, hazards in zip(curve.survival, curve.exits, strict=False)
            ]
            running = [0.0] * (len(value) + 1)
            for i in range(len(value) - 1, -1, -1):
                running[i] = running[i + 1] + value[i]
            suffix[s] = tuple(running)
        return cls(
            curves=curves,
            won=won,
            stuck=stuck,
            ends=tuple(ends),
            step=step,
            grid={s: grid[index[s]] for s in names},
            ever={s: _unit(p) for s, p in ever_of.items()},
            staying={s: _unit(p) for s, p in zip(names, staying, strict=True)},
            suffix=suffix,
        )

    def within(self, stage: str, days: float) -> float:
        """The chance of being won within ``days`` of entering ``stage`` (interpolated)."""
        values = self.grid[stage]
        if days <= 0:
            return values[0] if days == 0 else 0.0
        pos = days / self.step
        g = int(pos)
        if g >= len(values) - 1:
            return values[-1]
        return values[g] + (pos - g) * (values[g + 1] - values[g])

    def deal(self, stage: str, age: float) -> tuple[float, tuple[float, ...]] | None:
        """(chance of ever being won, chance of being won by each period end) of a deal that
        has spent ``age`` days in ``stage``; ``None`` when it is older than every stay the
        evidence has at risk (it cannot be conditioned on its age).
        """
        curve = self.curves[stage]
        day = math.floor(age)
        i0 = curve.first(day)
        base = curve.survival[i0]
        if base <= 0.0:
            return None
        ever = self.suffix[stage][i0] / base
        by_end = [0.0] * len(self.ends)
        horizon = self.ends[-1] if self.ends else 0.0
        stop = bisect_right(curve.days, age + horizon)
        for i in range(i0, stop):
            s_i = curve.survival[i] / base
            at = max(0.0, curve.days[i] + 0.5 - age)
            for target, h in curve.exits[i]:
                mass = s_i * h
                if target == self.won:
                    for k, end in enumerate(self.ends):
                        if at <= end:
                            by_end[k] += mass
                elif target in self.grid:
                    for k, end in enumerate(self.ends):
                        if at <= end:
                            by_end[k] += mass * self.within(target, end - at)
        reached = tuple(_unit(p) for p in by_end)
        return max(_unit(ever), reached[-1] if reached else 0.0), reached


def _unit(p: float) -> float:
    """``p`` clipped to [0, 1] (float rounding of the linear solves)."""
    return min(1.0, max(0.0, p))


def _worth(target: str, won: str, ever: Mapping[str, float], stuck: Mapping[str, float]) -> float:
    if target == won:
        return 1.0
    if target in ever:
        return ever[target]
    return stuck.get(target, 0.0)


def _renewal(
    curves: Mapping[str, StageCurve],
    names: tuple[str, ...],
    index: Mapping[str, int],
    won: str,
    step: float,
    size: int,
) -> list[tuple[float, ...]]:
    """``W_u`` on the grid ``0, step, 2 step, ...`` for every transient stage ``u``."""
    n = len(names)
    gained = [[0.0] * size for _ in range(n)]  # won departures per grid point
    moves: list[dict[int, list[tuple[int, float]]]] = [{} for _ in range(n)]
    for u, s in enumerate(names):
        curve = curves[s]
        for s_i, day, hazards in zip(curve.survival, curve.days, curve.exits, strict=False):
            pos = (day + 0.5) / step
            g = int(pos)
            if g >= size:
                break
            frac = pos - g
            for target, h in hazards:
                mass = s_i * h
                parts = ((g, mass * (1 - frac)), (g + 1, mass * frac))
                for at, m in parts:
                    if at >= size or m == 0.0:
                        continue
                    if target == won:
                        gained[u][at] += m
                    elif target in index:
                        moves[u].setdefault(index[target], []).append((at, m))
    now = [[0.0] * n for _ in range(n)]  # departures at grid point 0 (same point)
    for u in range(n):
        for v, points in moves[u].items():
            now[u][v] = sum(m for at, m in points if at == 0)
    keep = _inverse([[float(u == v) - now[u][v] for v in range(n)] for u in range(n)])
    values = [[0.0] * size for _ in range(n)]
    cumulative = [0.0] * n
    for g in range(size):
        b = [0.0] * n
        for u in range(n):
            cumulative[u] += gained[u][g]
            total = cumulative[u]
            for v, points in moves[u].items():
                w = values[v]
                total += math.fsum(m * w[g - at] for at, m in points if 0 < at <= g)
            b[u] = total
        for u in range(n):
            values[u][g] = min(1.0, sum(keep[u][v] * b[v] for v in range(n)))
    return [tuple(row) for row in values]


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """``x`` with ``x = a x + b`` (``I − a`` invertible: every stage leaks)."""
    n = len(b)
    inv = _inverse([[float(i == j) - a[i][j] for j in range(n)] for i in range(n)])
    return [sum(inv[i][j] * b[j] for j in range(n)) for i in range(n)]


def _inverse(m: list[list[float]]) -> list[list[float]]:
    """Gauss-Jordan inverse with partial pivoting (a near-singular pivot gives zeros)."""
    n = len(m)
    rows = [[*row, *(float(i == j) for j in range(n))] for i, row in enumerate(m)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(rows[r][col]))
        rows[col], rows[pivot] = rows[pivot], rows[col]
        lead = rows[col][col]
        if abs(lead) < 1e-15:
            continue
        rows[col] = [v / lead for v in rows[col]]
        for r in range(n):
            f = rows[r][col]
            if r != col and f != 0.0:
                rows[r] = [a - f * b for a, b in zip(rows[r], rows[col], strict=True)]
    return [row[n:] for row in rows]
