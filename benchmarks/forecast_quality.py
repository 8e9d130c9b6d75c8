"""Benchmark: how good is each forecaster on real and synthetic data, against plain pandas?

A rolling-origin backtest, one period ahead: at the start of every period in a window, each
forecaster sees only ``history.until(as_of)`` and forecasts the revenue won in that period;
the forecast is compared with what was won. Next to pipelinekit's forecasters, two baselines
are written here plainly in pandas, the way an analyst would in a notebook:

- **naive**: the mean revenue won in the last three complete periods;
- **snapshot conversion**: at the start of every earlier period, the deals open then, grouped
  by stage and age in stage (< 30, 30-90, 90-180, 180+ days), and the share of their amount
  won within that period, pooled over all earlier periods that start inside the history (a
  cell never seen takes its stage's share); applied to the deals open at ``as_of``; plus the
  mean revenue won in such a period by deals created after its start.

Data sets (read from ``../shared/data`` or ``PIPELINEKIT_DATA``, skipped with a message when
absent; the mappings are the real-data examples' ``load_history``):

- Maven CRM, monthly (April-December 2017) and quarterly (Q2-Q4 2017);
- Olist's marketing funnel, monthly (January-November 2018), one seller = 1;
- the Salesforce export of Preppin' Data, monthly (June-November 2022);
- the synthetic CRM of :func:`pipelinekit.demo.crm_history` (seed 1), monthly over 2023-2024
  and quarterly over the same two years: true rates below the weights, zombie deals,
  quarter-end pushes, growth.

Scores per forecaster: WAPE (Σ|forecast − actual| / Σ actual), bias, the coverage of its
P10-P90 band (share of actuals within it; honest bands: about 0.8) and the expected
calibration error of its per-deal chances of being won within the month (ECE). ``vs best``
is WAPE divided by the better baseline's WAPE (< 1: the forecaster beats both).

Run: ``.venv/bin/python benchmarks/forecast_quality.py`` (about a minute;
``--sets`` picks data sets, ``--json`` writes every point). ``--check`` exits 1 unless the
projection forecaster meets the targets of ``docs/forecast-quality.md`` (WAPE <= 0.9x the
better baseline on every data set, pooled P10-P90 coverage within 0.7-0.9, ECE <= 0.05).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

import pandas as pd

import pipelinekit as pk
from pipelinekit import demo
from pipelinekit.forecasts.backtest import backtest
from pipelinekit.forecasts.historical import HistoricalForecast
from pipelinekit.forecasts.markov import MarkovForecast
from pipelinekit.forecasts.projection import ProjectionForecast
from pipelinekit.forecasts.weighted import WeightedForecast
from pipelinekit.periods import period_kind

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "data"))

from _common import data_root  # noqa: E402  (the examples' own data finder)

BANDS = (30, 90, 180)
"""The baseline's age-in-stage bands (upper bounds in days; the last band is open)."""


@dataclass(frozen=True)
class DataSet:
    """A history and the window of its backtest."""

    name: str
    load: Callable[[], pk.History | None]
    period: str
    first: datetime
    last: datetime
    tz: tzinfo


def _example(module: str, folder: str) -> Callable[[], pk.History | None]:
    def load() -> pk.History | None:
        root = data_root()
        if root is None or not (root / folder).is_dir():
            return None
        loaded: Any = __import__(module)
        history: pk.History = loaded.load_history(root / folder)
        return history

    return load


def _synthetic() -> pk.History:
    return demo.crm_history(seed=1)


def _datasets() -> list[DataSet]:
    sao_paulo = __import__("zoneinfo").ZoneInfo("America/Sao_Paulo")
    maven = _example("maven_crm", "maven-crm")
    return [
        DataSet("maven monthly", maven, "month", datetime(2017, 4, 1), datetime(2017, 12, 1), UTC),
        DataSet(
            "maven quarterly", maven, "quarter", datetime(2017, 4, 1), datetime(2017, 10, 1), UTC
        ),
        DataSet(
            "olist monthly",
            _example("olist_funnel", "olist-marketing-funnel"),
            "month",
            datetime(2018, 1, 1),
            datetime(2018, 11, 1),
            sao_paulo,
        ),
        DataSet(
            "salesforce monthly",
            _example("salesforce_export", "preppin-sf-opps"),
            "month",
            datetime(2022, 6, 1),
            datetime(2022, 11, 1),
            UTC,
        ),
        DataSet(
            "synthetic monthly",
            _synthetic,
            "month",
            datetime(2023, 1, 1),
            datetime(2024, 12, 1),
            UTC,
        ),
        DataSet(
            "synthetic quarterly",
            _synthetic,
            "quarter",
            datetime(2023, 1, 1),
            datetime(2024, 10, 1),
            UTC,
        ),
    ]


# --------------------------------------------------------------------- the pandas baselines


def events_frame(history: pk.History) -> pd.DataFrame:
    """The history's records as a frame: ``at`` parsed, ``amount`` numeric, input order kept."""
    df = pd.DataFrame(history.to_records())
    df["at"] = pd.to_datetime(df["at"], utc=True, format="ISO8601")
    df["amount"] = pd.to_numeric(df["amount"], errors="coerce")
    df["seq"] = range(len(df))
    return df.sort_values(["opportunity_id", "at", "seq"])


def wins_frame(df: pd.DataFrame, won_stages: Sequence[str]) -> pd.DataFrame:
    """One row per won deal: when it was first won and its amount then."""
    amount = df.groupby("opportunity_id")["amount"].ffill()
    df = df.assign(amount_then=amount)
    won = df[(df["type"] == "stage_changed") & df["stage"].isin(won_stages)]
    first = won.groupby("opportunity_id").first()
    return first[["at", "amount_then"]].rename(columns={"at": "won_at", "amount_then": "amount"})


def open_at(df: pd.DataFrame, t: pd.Timestamp, closed_stages: Sequence[str]) -> pd.DataFrame:
    """Deals open at ``t``: stage, when it was entered, amount."""
    seen = df[df["at"] <= t]
    seen = seen.assign(amount=seen.groupby("opportunity_id")["amount"].ffill())
    moves = seen[seen["type"].isin(["opened", "stage_changed"])].groupby("opportunity_id").last()
    state = pd.DataFrame(
        {
            "stage": moves["stage"],
            "since": moves["at"],
            "amount": seen.groupby("opportunity_id")["amount"].last(),
        }
    )
    return state[~state["stage"].isin(closed_stages)]


def won_between(wins: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    return wins[(wins["won_at"] >= start) & (wins["won_at"] < end)]


def age_band(state: pd.DataFrame, t: pd.Timestamp) -> pd.Series:
    days = (t - state["since"]).dt.total_seconds() / 86_400
    return pd.cut(days, [-1.0, *BANDS, float("inf")], right=False, labels=False)


def baselines(
    history: pk.History, origins: Sequence[datetime], period: str, tz: tzinfo
) -> dict[datetime, tuple[float, float]]:
    """(naive, snapshot conversion) forecast at each origin, in pandas."""
    scheme = history.scheme
    won_stages = [s.key for s in scheme.stages if s.is_won]
    closed = [s.key for s in scheme.stages if not s.is_open]
    df = events_frame(history)
    wins = wins_frame(df, won_stages)
    opened = df[df["type"] == "opened"].groupby("opportunity_id")["at"].first()
    kind = period_kind(period)
    start = history.start
    out: dict[datetime, tuple[float, float]] = {}
    for origin in origins:
        now = kind.period_of_instant(origin, tz)
        past = []  # the earlier periods that start inside the history
        p = now.previous()
        while p.start_instant(tz) >= start:
            past.append((pd.Timestamp(p.start_instant(tz)), pd.Timestamp(p.end_instant(tz))))
            p = p.previous()
        recent = [*past, (pd.Timestamp(p.start_instant(tz)), pd.Timestamp(p.end_instant(tz)))]
        revenue = [won_between(wins, a, b)["amount"].sum() for a, b in recent[:3]]
        naive = sum(revenue) / len(revenue) if revenue else 0.0
        won_amount: dict[tuple[str, int], float] = {}
        open_amount: dict[tuple[str, int], float] = {}
        new: list[float] = []
        for a, b in past:
            state = open_at(df, a, closed)
            cells = list(zip(state["stage"], age_band(state, a), strict=True))
            won = won_between(wins, a, b)
            won = won[won["won_at"] > a]
            value = state.index.map(won["amount"]).fillna(0.0)
            for cell, amount, got in zip(cells, state["amount"].fillna(0.0), value, strict=True):
                open_amount[cell] = open_amount.get(cell, 0.0) + amount
                won_amount[cell] = won_amount.get(cell, 0.0) + got
            created_later = opened[opened > a].index
            new.append(won[won.index.isin(created_later)]["amount"].sum())
        stage_won: dict[str, float] = {}
        stage_open: dict[str, float] = {}
        for (stage, _), amount in open_amount.items():
            stage_open[stage] = stage_open.get(stage, 0.0) + amount
            stage_won[stage] = stage_won.get(stage, 0.0) + won_amount[stage, _]
        t = pd.Timestamp(origin)
        state = open_at(df, t, closed)
        expected = 0.0
        for cell, amount in zip(
            zip(state["stage"], age_band(state, t), strict=True),
            state["amount"].fillna(0.0),
            strict=True,
        ):
            if open_amount.get(cell):
                rate = won_amount[cell] / open_amount[cell]
            elif stage_open.get(cell[0]):
                rate = stage_won[cell[0]] / stage_open[cell[0]]
            else:
                rate = 0.0
            expected += amount * rate
        known = won_between(wins, pd.Timestamp(now.start_instant(tz)), t + pd.Timedelta(1, "us"))
        snapshot = known["amount"].sum() + expected + (sum(new) / len(new) if new else 0.0)
        out[origin] = (float(naive), float(snapshot))
    return out


# --------------------------------------------------------------------- running and scoring


def forecasters(history: pk.History, period: str, tz: tzinfo) -> dict[str, Any]:
    """pipelinekit's forecasters that apply to the history (weighted needs weights)."""
    out: dict[str, Any] = {}
    if all(s.weight is not None for s in history.scheme.open_stages):
        out["weighted"] = WeightedForecast(period=period, horizon=1, tz=tz)
    out["historical"] = HistoricalForecast(period=period, horizon=1, tz=tz)
    out["markov"] = MarkovForecast(period=period, horizon=1, tz=tz)
    out["projection"] = ProjectionForecast(period=period, horizon=1, tz=tz)
    return out


def evaluate(data: DataSet, history: pk.History) -> dict[str, Any]:
    """Backtest every forecaster and the baselines on one data set."""
    first = data.first.replace(tzinfo=data.tz)
    last = data.last.replace(tzinfo=data.tz)
    bt = backtest(
        forecasters(history, data.period, data.tz),
        history,
        as_of_dates=(first, last, data.period),
        period=data.period,
        tz=data.tz,
    )
    complete = [p for p in bt.points if p.complete]
    origins = sorted({p.as_of for p in complete})
    actual = {p.as_of: float(p.actual) for p in complete}
    base = baselines(history, origins, data.period, data.tz)
    total = sum(actual.values())
    rows: dict[str, dict[str, Any]] = {}
    for k, name in enumerate(("naive", "snapshot")):
        errors = [base[o][k] - actual[o] for o in origins]
        rows[name] = {
            "wape": sum(abs(e) for e in errors) / total,
            "bias": sum(errors) / len(errors),
        }
    for acc in bt.accuracy:
        rows[acc.forecaster] = {
            "wape": acc.wape,
            "bias": float(acc.bias),
            "coverage": acc.coverage,
            "bands": acc.bands,
            "inside": round((acc.coverage or 0.0) * acc.bands),
            "ece": acc.ece,
        }
    best = min(rows["naive"]["wape"], rows["snapshot"]["wape"])
    for row in rows.values():
        row["vs_best"] = row["wape"] / best if best else None
    points = [
        {
            "as_of": o.isoformat(),
            "actual": actual[o],
            "naive": base[o][0],
            "snapshot": base[o][1],
            **{p.forecaster: float(p.forecast) for p in complete if p.as_of == o},
        }
        for o in origins
    ]
    return {"name": data.name, "origins": len(origins), "rows": rows, "points": points}


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(result: dict[str, Any]) -> None:
    print(f"\n{result['name']} ({result['origins']} origins)")
    print(f"  {'method':<11} {'WAPE':>6} {'vs best':>7} {'bias':>13} {'P10-P90':>8} {'ECE':>6}")
    for name, row in result["rows"].items():
        print(
            f"  {name:<11} {_fmt(row['wape'], '6.3f')} {_fmt(row['vs_best'], '7.2f')} "
            f"{_fmt(row['bias'], '13,.0f')} {_fmt(row.get('coverage'), '8.2f')} "
            f"{_fmt(row.get('ece'), '6.3f')}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", help="data set names (default: all)")
    parser.add_argument("--json", type=Path, help="write every point and score here")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    results = []
    for data in _datasets():
        if args.sets and not any(s in data.name for s in args.sets):
            continue
        history = data.load()
        if history is None:
            print(f"\n{data.name}: skipped, its data set was not found (set PIPELINEKIT_DATA)")
            continue
        results.append(evaluate(data, history))
        report(results[-1])
    inside = sum(r["rows"]["projection"]["inside"] for r in results)
    banded = sum(r["rows"]["projection"]["bands"] for r in results)
    pooled = inside / banded if banded else None
    print(f"\nprojection: P10-P90 covers {_fmt(pooled, '.2f')} of {banded} actuals, pooled")
    missed = [r["name"] for r in results if not (r["rows"]["projection"]["vs_best"] or 9) <= 0.9]
    miscalibrated = [r["name"] for r in results if (r["rows"]["projection"]["ece"] or 0.0) > 0.05]
    print(f"  WAPE above 0.9x the better baseline: {', '.join(missed) or 'none'}")
    print(f"  ECE above 0.05: {', '.join(miscalibrated) or 'none'}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    ok = not missed and not miscalibrated and pooled is not None and 0.7 <= pooled <= 0.9
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
