"""Benchmark: the calculators (reports and forecasts) against plain pandas/numpy baselines.

Run with the project's virtualenv (``make bench-calculators`` or
``.venv/bin/python benchmarks/calculators.py``). Ingestion on its own is measured by
``benchmarks/ingest.py``; this script reuses its record generator, its pandas ingestion
(:func:`ingest.pandas_events`) and its peak-RSS method (``VmHWM`` reset through
``/proc/self/clear_refs``, in a fresh child process per side, task and size).

For each size, on the same records, in the same process, each side computes the same answer
at ``as_of`` = the middle of the history (so each call replays a prefix; the prefix a History
keeps from its last ``until`` is moved away before each timed call, so nothing is cached):

========== ============================================ =========================================
task       pipelinekit                                  the notebook user's pandas / numpy
========== ============================================ =========================================
report     ``PipelineByStage().compute(history)``       snapshot (filter ``at <= as_of``,
                                                        ``groupby(id).last()``), then per stage:
                                                        count, sum amount, sum amount*weight/100
weighted   ``WeightedForecast(period="month",           snapshot; open deals' amount*weight/100
           horizon=3).compute(history)``                by expected-close month (``overdue``
                                                        before as_of's date, ``later`` after the
                                                        horizon); won amounts in as_of's month
historical ``HistoricalForecast().compute(history)``    the per-stage win-rate table only: closed
                                                        deals, furthest non-lost stage reached,
                                                        reached/won counts per open stage
montecarlo ``MonteCarloForecast(trials=10_000,          snapshot + buckets as for weighted, then
           seed=1).compute(history)``                   ``rng.random((trials, deals)) < p`` in
                                                        chunks of deals, ``@ cents`` per bucket
end2end    ``History.from_records`` + report +          ``ingest.pandas_events`` + the report and
           weighted forecast (from the records)         weighted baselines (from the records)
========== ============================================ =========================================

The calculator tasks start from a built ``History`` (pipelinekit) and from the parsed,
de-duplicated, sorted frame (pandas): both sides then do their own snapshot. ``end2end``
starts from the plain records on both sides. The two sides run alternately, ``--repeat``
times, and the medians are printed (the machine may be shared; medians are robust to a
noisy neighbour, min/max are in ``--json``).

Every size also checks that the baseline computes the same answer as pipelinekit: the report
per stage (count exact; amount and weighted to the cent: the float sum within half a cent of
the exact Decimal, so both round to the same cent except on an exact half-cent tie, which a
float cannot represent), the weighted forecast per bucket (deals exact; expected and won to
the cent, likewise), the win-rate
table per stage (deals and won exact) and the Monte Carlo means per bucket (within 4 standard
errors of each other and of the exact weighted expectation: the two use different random
streams, so equality is not expected). A baseline that computes something else is worthless,
so a disagreement makes the script exit 1.

Peak memory (``--no-memory`` skips it) is the rise of the peak RSS over the RSS just before the
task, the records and the history or frame already built and kept alive (for ``end2end``
only the records), measured in a fresh child process per task, side and size.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from ingest import _reset_peak_rss, _status_bytes, generate, instants, pandas_events

import pipelinekit as pk
from pipelinekit.forecasts.distribution import MonteCarloForecast
from pipelinekit.forecasts.historical import HistoricalForecast
from pipelinekit.forecasts.weighted import WeightedForecast
from pipelinekit.reports.pipeline_by_stage import PipelineByStage

SCHEME = pk.schemes.get("salesforce")
WEIGHTS = {s.key: float(s.weight) for s in SCHEME.stages if s.weight is not None}
OPEN = [s.key for s in SCHEME.open_stages]
WON_STAGES = [s.key for s in SCHEME.won_stages]
CLOSED = [s.key for s in SCHEME.stages if not s.is_open]
# how far in the funnel a stage reaches: lost stages reach nothing, won ones everything
REACH = {s.key: float(SCHEME.index(s.key)) for s in SCHEME.open_stages} | {
    s: float(len(SCHEME.stages)) for s in WON_STAGES
}
HORIZON = 3
TRIALS = 10_000
SEED = 1
CHUNK = 1_000  # deals per numpy block: a (trials x CHUNK) float block is 80 MB

# -- pipelinekit side ------------------------------------------------------------------------


def pk_report(history: pk.History, as_of: datetime) -> Any:
    return PipelineByStage().compute(history, as_of=as_of)


def pk_weighted(history: pk.History, as_of: datetime) -> Any:
    return WeightedForecast(period="month", horizon=HORIZON).compute(history, as_of=as_of)


def pk_historical(history: pk.History, as_of: datetime) -> Any:
    return HistoricalForecast(horizon=HORIZON).compute(history, as_of=as_of)


def pk_montecarlo(history: pk.History, as_of: datetime) -> Any:
    return MonteCarloForecast(trials=TRIALS, seed=SEED, horizon=HORIZON).compute(
        history, as_of=as_of
    )


def pk_end2end(records: list[dict[str, Any]], as_of: datetime) -> Any:
    history = pk.History.from_records(records, scheme=SCHEME)
    return pk_report(history, as_of), pk_weighted(history, as_of)


# -- the pandas / numpy side -----------------------------------------------------------------


def _upto(df: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    return df[df["at"] <= pd.Timestamp(as_of)]


def pd_report(df: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    snap = _upto(df, as_of).groupby("opportunity_id", sort=False)[["stage", "amount"]].last()
    snap["weighted"] = snap["amount"] * snap["stage"].map(WEIGHTS) / 100
    return snap.groupby("stage").agg(
        count=("stage", "size"), amount=("amount", "sum"), weighted=("weighted", "sum")
    )


def _open_buckets(df: pd.DataFrame, as_of: datetime) -> tuple[pd.DataFrame, pd.Series, float]:
    """The snapshot's open deals with their bucket, and the amount won in as_of's month."""
    upto = _upto(df, as_of)
    upto = upto.assign(stage_at=upto["at"].where(upto["stage"].notna()))
    columns = ["stage", "amount", "expected_close", "stage_at"]
    snap = upto.groupby("opportunity_id", sort=False)[columns].last()
    today = pd.Timestamp(as_of.date())
    month = pd.Period(today, "M")
    end = (month + HORIZON).start_time
    opens = snap[snap["stage"].isin(OPEN)]
    close = opens["expected_close"]
    bucket = close.dt.to_period("M").astype(str)
    bucket = bucket.mask(close >= end, "later").mask(close < today, "overdue")
    bucket = bucket.mask(close.isna(), "no close date")
    won = snap[snap["stage"].isin(WON_STAGES)]
    won_now = won[won["stage_at"] >= month.start_time.tz_localize(as_of.tzinfo)]
    return opens, bucket, float(won_now["amount"].sum())


def pd_weighted(df: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    opens, bucket, won = _open_buckets(df, as_of)
    expected = opens["amount"] * opens["stage"].map(WEIGHTS) / 100
    out = (
        expected.groupby(bucket)
        .agg(["sum", "size"])
        .rename(columns={"sum": "expected", "size": "deals"})
    )
    out["won"] = 0.0
    label = str(pd.Period(pd.Timestamp(as_of.date()), "M"))
    if label not in out.index:
        out.loc[label] = (0.0, 0, 0.0)
    out.loc[label, "won"] = won
    return out


def pd_historical(df: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    moves = _upto(df, as_of)
    moves = moves.loc[moves["stage"].notna(), ["opportunity_id", "stage"]]
    final = moves.groupby("opportunity_id", sort=False)["stage"].last()
    closed = final[final.isin(CLOSED)]
    furthest = moves["stage"].map(REACH).groupby(moves["opportunity_id"], sort=False).max()
    furthest = furthest.reindex(closed.index)
    won = closed.isin(WON_STAGES)
    rows = []
    for key in OPEN:
        reached = furthest >= SCHEME.index(key)
        n, w = int(reached.sum()), int((reached & won).sum())
        rows.append({"stage": key, "deals": n, "won": w, "rate": w / n if n else math.nan})
    return pd.DataFrame(rows).set_index("stage")


def np_montecarlo(df: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    opens, bucket, _ = _open_buckets(df, as_of)
    p = (opens["stage"].map(WEIGHTS) / 100).to_numpy()
    cents = (opens["amount"] * 100).round().to_numpy()
    rng = np.random.default_rng(SEED)
    rows = {}
    groups = pd.Series(bucket.to_numpy()).groupby(bucket.to_numpy()).indices
    for label, positions in groups.items():
        totals = np.zeros(TRIALS)
        for start in range(0, len(positions), CHUNK):
            block = positions[start : start + CHUNK]
            totals += (rng.random((TRIALS, len(block))) < p[block]) @ cents[block]
        p10, p50, p90 = np.quantile(totals, (0.1, 0.5, 0.9), method="inverted_cdf") / 100
        rows[label] = {
            "expected": totals.mean() / 100,
            "std": totals.std() / 100,
            "p10": p10,
            "p50": p50,
            "p90": p90,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def pd_end2end(records: list[dict[str, Any]], as_of: datetime) -> Any:
    df = pandas_events(records)
    return pd_report(df, as_of), pd_weighted(df, as_of)


# -- agreement checks ------------------------------------------------------------------------


def _cents(value: float | Decimal | None) -> Decimal:
    """An exact Decimal or a float sum as a Decimal (the float's exact binary value)."""
    return Decimal(0) if value is None else Decimal(value)


HALF_CENT = Decimal("0.005")
MAX_DIFFERENCE = [Decimal(0)]  # the largest |pipelinekit - pandas| seen among money checks


def _differ(exact: Decimal | None, approx: float) -> bool:
    """True unless the float is within half a cent of the exact sum (same cent when rounded,
    ties aside: a float sum cannot tell 0.415 from 0.41499999...)."""
    gap = abs(_cents(exact) - _cents(approx))
    MAX_DIFFERENCE[0] = max(MAX_DIFFERENCE[0], gap)
    return gap > HALF_CENT


def check_report(mine: Any, theirs: pd.DataFrame) -> list[str]:
    problems = []
    for cell in mine.cells:
        row = theirs.loc[cell.stage] if cell.stage in theirs.index else None
        count = 0 if row is None else int(row["count"])
        amount = 0.0 if row is None else float(row["amount"])
        weighted = 0.0 if row is None else float(row["weighted"])
        money = [_differ(cell.amount, amount), _differ(cell.weighted, weighted)]
        if cell.count != count or any(money):
            problems.append(
                f"report {cell.stage}: pipelinekit {cell.count} {cell.amount} {cell.weighted}"
                f" pandas {count} {amount:.2f} {weighted:.2f}"
            )
    extra = set(theirs.index) - {c.stage for c in mine.cells}
    problems += [f"report: pandas has a stage pipelinekit lacks: {s}" for s in sorted(extra)]
    return problems


def check_weighted(mine: Any, theirs: pd.DataFrame) -> list[str]:
    problems = []
    for row in mine.rows:
        got = theirs.loc[row.bucket] if row.bucket in theirs.index else None
        deals = 0 if got is None else int(got["deals"])
        expected = 0.0 if got is None else float(got["expected"])
        won = 0.0 if got is None else float(got["won"])
        money = [_differ(row.expected, expected), _differ(row.won, won)]
        if row.deals != deals or any(money):
            problems.append(
                f"weighted {row.bucket}: pipelinekit {row.deals} {row.expected} {row.won}"
                f" pandas {deals} {expected:.2f} {won:.2f}"
            )
    extra = set(theirs.index) - {r.bucket for r in mine.rows}
    problems += [f"weighted: pandas has a bucket pipelinekit lacks: {b}" for b in sorted(extra)]
    return problems


def check_historical(mine: Any, theirs: pd.DataFrame) -> list[str]:
    problems = []
    for rate in mine.stage_rates:
        if rate.segment is not None:
            continue
        got = theirs.loc[rate.stage]
        if (rate.deals, rate.won) != (int(got["deals"]), int(got["won"])):
            problems.append(
                f"historical {rate.stage}: pipelinekit {rate.deals}/{rate.won}"
                f" pandas {int(got['deals'])}/{int(got['won'])}"
            )
    return problems


def check_montecarlo(mine: Any, theirs: pd.DataFrame) -> list[str]:
    """Both means within 4 standard errors of each other and of the exact expectation."""
    problems = []
    for row in mine.rows:
        if row.deals == 0:
            continue
        exact = float(sum((d.expected for d in mine.deals if d.bucket == row.bucket), Decimal(0)))
        sd = math.sqrt(float(row.variance)) if row.variance is not None else float(row.std)
        se = sd / math.sqrt(mine.trials)
        ours, np_mean = float(row.expected), float(theirs.loc[row.bucket, "expected"])
        if abs(ours - exact) > 4 * se + 0.01 or abs(np_mean - exact) > 4 * se + 0.01:
            problems.append(
                f"montecarlo {row.bucket}: pipelinekit mean {ours:.2f} numpy {np_mean:.2f}"
                f" exact {exact:.2f} (standard error {se:.2f})"
            )
    return problems


def check_end2end(mine: Any, theirs: Any) -> list[str]:
    return check_report(mine[0], theirs[0]) + check_weighted(mine[1], theirs[1])


# -- tasks -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    name: str
    pk: Callable[[Any, datetime], Any]
    pd: Callable[[Any, datetime], Any]
    check: Callable[[Any, Any], list[str]]
    from_records: bool = False


TASKS = {
    t.name: t
    for t in (
        Task("report", pk_report, pd_report, check_report),
        Task("weighted", pk_weighted, pd_weighted, check_weighted),
        Task("historical", pk_historical, pd_historical, check_historical),
        Task("montecarlo", pk_montecarlo, np_montecarlo, check_montecarlo),
        Task("end2end", pk_end2end, pd_end2end, check_end2end, from_records=True),
    )
}


def inputs(task: Task, side: str, records: list[dict[str, Any]]) -> Any:
    if task.from_records:
        return records
    if side == "pipelinekit":
        return pk.History.from_records(records, scheme=SCHEME)
    return pandas_events(records)


def timed(fn: Callable[[Any, datetime], Any], data: Any, as_of: datetime) -> tuple[float, Any]:
    if isinstance(data, pk.History) and data.start is not None:
        # A History keeps the last prefix asked of until() with its snapshot (calculators
        # at one as_of share it); move it elsewhere so every timed call builds its own.
        data.until(data.start)
    gc.collect()
    t0 = time.perf_counter()
    out = fn(data, as_of)
    return time.perf_counter() - t0, out


# -- memory, in a child process (ingest.py's method) -----------------------------------------


def memory_child(task_name: str, side: str, n_events: int, seed: int) -> None:
    task = TASKS[task_name]
    records = generate(n_events, seed)
    mid, _ = instants(records)
    data = inputs(task, side, records)
    fn = task.pk if side == "pipelinekit" else task.pd
    # the records stay alive (as in ingest.py): freeing them first would leave free memory
    # in the process that the task then reuses unseen, understating its peak
    gc.collect()
    reset = _reset_peak_rss()
    before = _status_bytes("VmRSS")
    fn(data, mid)
    peak = _status_bytes("VmHWM")
    del records
    print(json.dumps({"rss": peak - before, "reset": reset}))


def measure_memory(task: str, side: str, n_events: int, seed: int) -> int:
    command = [sys.executable, __file__, "--memory-child", f"{task}:{side}"]
    out = subprocess.run(
        [*command, "--events", str(n_events), "--seed", str(seed)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, int] = json.loads(out.stdout.strip().splitlines()[-1])
    return result["rss"]


# -- driver ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=list(TASKS))
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--quick", action="store_true", help="smoke run: 10k and 100k, 1 repeat")
    parser.add_argument("--json", type=Path, help="also write every timing here")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        task, side = args.memory_child.split(":")
        memory_child(task, side, args.events[0], args.seed)
        return 0
    if args.quick:
        args.events, args.repeat = [10_000, 100_000], 1

    print(
        f"python {sys.version.split()[0]}, pandas {pd.__version__}, numpy {np.__version__},"
        f" repeat={args.repeat} (median), seed={args.seed}, as_of = middle of the history"
    )
    print(
        f"{'task':<11} {'events':>9} {'opps':>7} {'open':>6} {'pk s':>8} {'pandas s':>8}"
        f" {'ratio':>6} {'pk MB':>7} {'pd MB':>7} {'ratio':>6}  agree"
    )
    medians: dict[tuple[str, str, int], float] = {}
    raw: list[dict[str, Any]] = []
    disagreements: list[str] = []
    for n in sorted(args.events):
        records = generate(n, args.seed)
        mid, _ = instants(records)
        history = pk.History.from_records(records, scheme=SCHEME)
        frame = pandas_events(records)
        opps, n_open = len(history.opportunity_ids), len(history.as_of(mid).open())
        for name in args.tasks:
            task = TASKS[name]
            data = {
                "pipelinekit": records if task.from_records else history,
                "pandas": records if task.from_records else frame,
            }
            times: dict[str, list[float]] = {"pipelinekit": [], "pandas": []}
            outs: dict[str, Any] = {}
            for _ in range(args.repeat):  # alternate the sides: a busy neighbour hits both
                for side, fn in (("pipelinekit", task.pk), ("pandas", task.pd)):
                    seconds, outs[side] = timed(fn, data[side], mid)
                    times[side].append(seconds)
            problems = task.check(outs["pipelinekit"], outs["pandas"])
            disagreements += [f"{n} events: {p}" for p in problems]
            del outs
            mine, theirs = (statistics.median(times[s]) for s in ("pipelinekit", "pandas"))
            medians[(name, "pipelinekit", n)] = mine
            medians[(name, "pandas", n)] = theirs
            row = (
                f"{name:<11} {n:>9} {opps:>7} {n_open:>6} {mine:>8.3f} {theirs:>8.3f}"
                f" {mine / theirs:>6.2f}"
            )
            record: dict[str, Any] = {"task": name, "events": n, "times": times}
            if args.no_memory:
                row += f" {'':>7} {'':>7} {'':>6}"
            else:
                mb = 1024 * 1024
                pk_mem = measure_memory(name, "pipelinekit", n, args.seed)
                pd_mem = measure_memory(name, "pandas", n, args.seed)
                record |= {"rss_pipelinekit": pk_mem, "rss_pandas": pd_mem}
                row += f" {pk_mem / mb:>7.0f} {pd_mem / mb:>7.0f} {pk_mem / max(pd_mem, 1):>6.2f}"
            row += "  yes" if not problems else f"  NO ({len(problems)})"
            print(row, flush=True)
            raw.append(record)
        del records, history, frame
    sizes = sorted(args.events)
    for name, side in itertools.product(args.tasks, ("pipelinekit", "pandas")):
        for small, big in itertools.pairwise(sizes):
            ratio = medians[(name, side, big)] / medians[(name, side, small)]
            verdict = "ok (linear)" if ratio <= 1.2 * big / small else "NOT LINEAR"
            print(f"scaling {name} {side} {small} -> {big} events: x{ratio:.2f} ({verdict})")
    for line in disagreements:
        print("DISAGREE", line)
    print(
        "baselines agree with pipelinekit:",
        "yes" if not disagreements else "NO",
        f"(largest money difference {float(MAX_DIFFERENCE[0]):.3g}; counts exact)",
    )
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1))
    return 1 if disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
