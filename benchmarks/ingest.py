"""Benchmark: ingest + snapshot with pipelinekit against a plain pandas baseline.

Run with the project's virtualenv (``make bench`` or ``.venv/bin/python benchmarks/ingest.py``).

What is timed, for each size, on the same records in the same process:

- pipelinekit: ``History.from_records(records, scheme=...)`` (bulk validation, de-duplication,
  ordering, replay) then ``history.as_of(mid)`` (a prefix replay + freezing every opportunity
  opened by then) and ``history.as_of(after_end)`` (the final snapshot).
- pandas: what a notebook user would write for the same answers: ``pd.DataFrame(records)``,
  parse timestamps, amounts and dates, drop duplicate ``event_id``, stable sort by time, then
  the latest value of each state field per opportunity at ``mid`` and after the end
  (filter ``at <= t``, ``groupby("opportunity_id").last()``).
- polars: the same in polars (``pl.from_dicts``, parse, ``unique``, sort, ``group_by``).
- with ``--reference``, also pipelinekit with its reference engine forced
  (``PIPELINEKIT_ENGINE=reference``: what runs without the ``fast`` extra).

The sides run alternately, each repeat timing every side once, and the medians are
printed with each side's ratio to pandas; the sides' counts of opportunities at both
instants must agree (else the script prints DISAGREE and exits 1).

Peak memory is measured in a fresh subprocess per side and size, because a high-water mark
cannot be reset inside one process. Two figures are printed:

- ``rss``: the rise of the peak resident set size (``VmHWM``, reset through
  ``/proc/self/clear_refs``) over the resident size just before the work starts (the records
  are already built, so they are not counted). This is what the machine pays
  and it sees every allocator: Python's, numpy's, and the Rust allocations inside
  pydantic-core. It is the figure the targets are checked against.
- ``traced``: ``tracemalloc``'s peak for the same work. It does see the Python objects that
  pydantic-core creates (they come from CPython's allocator) and numpy's buffers (numpy reports
  them to tracemalloc), but not pydantic-core's internal Rust buffers nor allocator slack and
  fragmentation, so it is a lower bound; it is printed as a cross-check.

The scaling check divides the time at 10x the events by the time at the smaller size; linear
replay gives ~10, and anything above ~12 is flagged.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

import pipelinekit as pk

STAGES = (
    "prospecting",
    "qualification",
    "needs-analysis",
    "value-proposition",
    "id-decision-makers",
    "perception-analysis",
    "proposal-price-quote",
    "negotiation-review",
)
WON, LOST = "closed-won", "closed-lost"
OWNERS = tuple(f"rep-{i:02d}" for i in range(60))
PRODUCTS = ("crm", "erp", "bi", "hr", "payroll", "support", "training", "hosting")
ACTIVITIES = ("call", "meeting", "email", "demo", "note")
START = datetime(2022, 1, 1, tzinfo=UTC)
SPAN_SECONDS = 3 * 365 * 86400  # opportunities open over ~3 years
EVENTS_PER_OPPORTUNITY = 5  # 1M events ~ 200k opportunities


def _iso(t: datetime) -> str:
    return t.isoformat()  # aware UTC -> '...+00:00'


def generate(n_events: int, seed: int = 2024) -> list[dict[str, Any]]:
    """``n_events`` realistic records, deterministically, grouped by opportunity.

    Each opportunity is opened (amount as a decimal string, currency, owner, product,
    expected close), then gets a few of: forward stage moves (or a move to closed-lost),
    amount and close-date changes, activities and owner changes, each later than the last.
    Records come grouped by opportunity (as a per-deal CRM export would), so both sides
    really have to sort them by time.
    """
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    n = 0
    while len(records) < n_events:
        n += 1
        oid = f"opp-{n:07d}"
        extra = min(
            rng.randint(1, 2 * (EVENTS_PER_OPPORTUNITY - 1) - 1), n_events - 1 - len(records)
        )
        t = START + timedelta(seconds=rng.randrange(SPAN_SECONDS))
        stage_ix = 0 if rng.random() < 0.8 else 1
        close = t.date() + timedelta(days=rng.randint(30, 180))
        records.append(
            {
                "type": "opened",
                "opportunity_id": oid,
                "at": _iso(t),
                "stage": STAGES[stage_ix],
                "amount": f"{rng.randint(500, 500_000)}.{rng.randint(0, 99):02d}",
                "currency": "USD",
                "owner": rng.choice(OWNERS),
                "account": f"acct-{rng.randrange(40_000):05d}",
                "product": rng.choice(PRODUCTS),
                "expected_close": close.isoformat(),
                "event_id": f"{oid}-0",
            }
        )
        closed = False
        for k in range(1, extra + 1):
            t += timedelta(seconds=rng.randint(3600, 30 * 86400))
            base = {"opportunity_id": oid, "at": _iso(t), "event_id": f"{oid}-{k}"}
            roll = rng.random()
            if roll < 0.4 and not closed:
                last = k == extra
                if last and rng.random() < 0.6:
                    stage = WON if rng.random() < 0.35 else LOST
                elif rng.random() < 0.08:
                    stage = LOST
                else:
                    stage_ix = min(stage_ix + rng.randint(1, 2), len(STAGES) - 1)
                    stage = STAGES[stage_ix]
                closed = stage in (WON, LOST)
                rec = {"type": "stage_changed", "stage": stage}
                if stage == LOST:
                    rec["reason"] = rng.choice(("price", "competitor", "no budget", "timing"))
            elif roll < 0.55:
                amount = f"{rng.randint(500, 500_000)}.{rng.randint(0, 99):02d}"
                rec = {"type": "amount_changed", "amount": amount, "currency": "USD"}
            elif roll < 0.7:
                close = close + timedelta(days=rng.randint(-20, 60))
                rec = {"type": "close_date_changed", "expected_close": close.isoformat()}
            elif roll < 0.93:
                rec = {"type": "activity_logged", "kind": rng.choice(ACTIVITIES)}
                if rng.random() < 0.3:
                    rec["note"] = "follow-up with the buying committee"
            else:
                rec = {"type": "owner_changed", "owner": rng.choice(OWNERS)}
            records.append(base | rec)
    return records


def instants(records: list[dict[str, Any]]) -> tuple[datetime, datetime]:
    """A mid-point (so a prefix is replayed) and an instant after the last event."""
    last = max(datetime.fromisoformat(r["at"]) for r in records)
    return START + (last - START) / 2, last + timedelta(days=1)


# -- the two sides -----------------------------------------------------------------------


def run_pipelinekit(records: list[dict[str, Any]], mid: datetime, end: datetime) -> object:
    history = pk.History.from_records(records, scheme=pk.schemes.get("salesforce"))
    at_mid = history.as_of(mid)
    at_end = history.as_of(end)
    # touch one value of each so lazy work (if any) cannot hide
    return len(at_mid), len(at_end), at_end[next(iter(at_end))].stage


STATE_COLUMNS = ["stage", "amount", "currency", "owner", "account", "product", "expected_close"]


def pandas_events(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The notebook user's ingestion: a frame, parsed, de-duplicated, stably sorted by time.

    ``benchmarks/calculators.py`` starts its pandas baselines from this frame too.
    """
    df = pd.DataFrame(records)
    df["at"] = pd.to_datetime(df["at"], utc=True, format="ISO8601")
    df["amount"] = pd.to_numeric(df["amount"])
    df["expected_close"] = pd.to_datetime(df["expected_close"], format="ISO8601")
    df = df.drop_duplicates("event_id")
    return df.sort_values("at", kind="stable")


def run_pandas(records: list[dict[str, Any]], mid: datetime, end: datetime) -> object:
    df = pandas_events(records)

    def state_at(t: datetime) -> pd.DataFrame:
        upto = df[df["at"] <= pd.Timestamp(t)]
        return upto.groupby("opportunity_id", sort=False)[[*STATE_COLUMNS, "at"]].last()

    at_mid = state_at(mid)
    at_end = state_at(end)
    return len(at_mid), len(at_end), at_end["stage"].iloc[0]


POLARS_STATE = [*STATE_COLUMNS, "at"]


def polars_events(records: list[dict[str, Any]]) -> Any:
    """The same ingestion in polars: a frame, parsed, de-duplicated, stably sorted by time.

    ``benchmarks/calculators.py`` starts its polars baselines from this frame too.
    """
    import polars as pl

    df = pl.from_dicts(records, infer_schema_length=None)
    df = df.with_columns(
        pl.col("at").str.to_datetime("%Y-%m-%dT%H:%M:%S%:z", time_zone="UTC"),
        pl.col("amount").cast(pl.Float64),
        pl.col("expected_close").str.to_date("%Y-%m-%d"),
    )
    df = df.unique("event_id", keep="first", maintain_order=True)
    return df.sort("at", maintain_order=True)


def run_polars(records: list[dict[str, Any]], mid: datetime, end: datetime) -> object:
    import polars as pl

    df = polars_events(records)

    def state_at(t: datetime) -> Any:
        upto = df.filter(pl.col("at") <= t)
        return upto.group_by("opportunity_id", maintain_order=True).agg(
            pl.col(c).drop_nulls().last() for c in POLARS_STATE
        )

    at_mid = state_at(mid)
    at_end = state_at(end)
    return at_mid.height, at_end.height, at_end["stage"][0]


def run_reference(records: list[dict[str, Any]], mid: datetime, end: datetime) -> object:
    """pipelinekit with the reference engine forced (as without the ``fast`` extra)."""
    before = os.environ.get("PIPELINEKIT_ENGINE")
    os.environ["PIPELINEKIT_ENGINE"] = "reference"
    try:
        return run_pipelinekit(records, mid, end)
    finally:
        if before is None:
            del os.environ["PIPELINEKIT_ENGINE"]
        else:
            os.environ["PIPELINEKIT_ENGINE"] = before


SIDES: dict[str, Callable[[list[dict[str, Any]], datetime, datetime], object]] = {
    "pipelinekit": run_pipelinekit,
    "reference": run_reference,
    "pandas": run_pandas,
    "polars": run_polars,
}


def time_sides(
    sides: list[str], records: list[dict[str, Any]], mid: datetime, end: datetime, repeat: int
) -> dict[str, list[float]]:
    """Each side's times, the sides alternating within each repeat (a busy neighbour on
    the machine then slows every side alike)."""
    times: dict[str, list[float]] = {side: [] for side in sides}
    for _ in range(repeat):
        for side in sides:
            fn = SIDES[side]
            gc.collect()
            t0 = time.perf_counter()
            fn(records, mid, end)
            times[side].append(time.perf_counter() - t0)
    return times


# -- memory, in a child process ----------------------------------------------------------


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # reported in kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def memory_child(side: str, n_events: int, seed: int) -> None:
    """Run one side once and print its memory figures as JSON (the child process's job).

    The peak comes from VmHWM, reset just before the work. Not ``ru_maxrss``: Linux carries
    the parent's high-water mark into a forked-and-exec'd child, so a child started by a
    big parent would report the parent's size.
    """
    records = generate(n_events, seed)
    mid, end = instants(records)
    fn = SIDES[side]
    gc.collect()
    reset = _reset_peak_rss()
    before = _status_bytes("VmRSS")
    fn(records, mid, end)
    peak = _status_bytes("VmHWM")
    gc.collect()
    tracemalloc.start()
    fn(records, mid, end)
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(json.dumps({"rss": peak - before, "traced": traced, "reset": reset}))


def measure_memory(side: str, n_events: int, seed: int) -> dict[str, int]:
    command = [sys.executable, __file__, "--memory-child", side, "--events", str(n_events)]
    out = subprocess.run(
        [*command, "--seed", str(seed)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, int] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# -- driver --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--quick", action="store_true", help="smoke run: 10k and 100k, 1 repeat")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the scaling check fails")
    parser.add_argument(
        "--reference", action="store_true", help="also time pipelinekit's reference engine"
    )
    parser.add_argument("--memory-child", choices=sorted(SIDES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child, args.events[0], args.seed)
        return 0
    if args.quick:
        args.events, args.repeat = [10_000, 100_000], 1

    sides = ["pipelinekit", "pandas", "polars"] + (["reference"] if args.reference else [])
    print(
        f"python {sys.version.split()[0]}, repeat={args.repeat} (median, sides alternating),"
        f" seed={args.seed}; pipelinekit = the engine chosen automatically"
    )
    header = f"{'events':>9} {'opps':>7}" + "".join(f" {s + ' s':>14}" for s in sides)
    header += "".join(f" {s[:4] + '/pd':>8}" for s in sides if s != "pandas")
    if not args.no_memory:
        header += "".join(f" {s[:6] + ' MB':>9}" for s in sides)
    print(header)
    medians: dict[int, float] = {}
    failed = disagree = False
    for n in sorted(args.events):
        records = generate(n, args.seed)
        mid, end = instants(records)
        opps = len({r["opportunity_id"] for r in records})
        answers = {side: SIDES[side](records, mid, end) for side in sides}
        if len({a[:2] for a in answers.values()}) != 1:  # type: ignore[index]
            print("DISAGREE", answers)
            disagree = True
        times = time_sides(sides, records, mid, end, args.repeat)
        del records
        median = {side: statistics.median(times[side]) for side in sides}
        medians[n] = median["pipelinekit"]
        row = f"{n:>9} {opps:>7}" + "".join(f" {median[s]:>14.3f}" for s in sides)
        row += "".join(f" {median[s] / median['pandas']:>8.2f}" for s in sides if s != "pandas")
        if not args.no_memory:
            mb = 1024 * 1024
            row += "".join(f" {measure_memory(s, n, args.seed)['rss'] / mb:>9.0f}" for s in sides)
        print(row, flush=True)
    sizes = sorted(medians)
    for small, big in itertools.pairwise(sizes):
        ratio = medians[big] / medians[small]
        per = (big / small) * 1.2
        verdict = "ok (linear)" if ratio <= per else "NOT LINEAR"
        failed |= ratio > per
        print(f"scaling pipelinekit {small} -> {big} events: x{ratio:.2f} ({verdict})")
    return 1 if disagree or (failed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
