"""Benchmark: how fast could *any* pure-Python pipeline be? A lower bound for ``end2end``.

``benchmarks/calculators.py`` times ``end2end`` (``History.from_records`` + the pipeline
report + the weighted forecast at 1M events) against pandas. Issue 7 asks for a ratio of at
most 1.0 with a core that depends on pydantic and python-dateutil only, and with speed that
comes "from bulk validation, compact internal representations and avoiding per-event
object churn, not from bypassing validation". This script measures what that leaves
possible: a *sketch* that does only the minimum any such implementation must do, and
far less than pipelinekit does, timed in the same process as pipelinekit and the pandas
baseline of ``calculators.py``:

1. validate every record with the event models' rules: pipelinekit's own bulk validator
   (``pipelinekit._rows``: one pydantic-core call per 16k records, into typed dicts, the
   fastest correct form we have), keeping only the few fields the answer needs;
2. check event ids for repeats (a set), group the events by opportunity and order each
   group by time (a stable sort: no global order, which pipelinekit also builds);
3. replay every event once, one opportunity at a time (as pipelinekit does, for cache
   locality), through a minimal state machine: an opportunity must be opened first and
   once; a stage must be in the scheme; the state is stage, amount, expected close date
   and when the stage was entered, in a small list;
4. replay the events up to ``as_of`` again for the snapshot (a History answers any as_of);
5. sum the report (count, amount and weighted amount per stage, exact Decimals) and the
   weighted forecast (open deals by expected-close month; won amounts of as_of's month).

What the sketch leaves out, and pipelinekit does: stage visits (the path), activities,
owners, accounts and the other fields, probability overrides, currencies, rejections with
located errors in lenient mode, duplicate events compared field by field, the scheme's
transition rules, frozen snapshots any calculator can read, the per-deal forecast rows.
So its time estimates the floor of the design: a pure-Python implementation that keeps the
library's features does all of this and more (each step could perhaps be done a little
faster than here, but none can be skipped). The ``validation`` line times step 1 alone.
The sketch checks its answer against pipelinekit's (counts exact, money within half a
cent) and the script exits 1 on a disagreement.

Run: ``make bench-floor`` (``.venv/bin/python benchmarks/floor.py --repeat 3``). Peak memory
is measured as in ``ingest.py``: the rise of VmHWM in a fresh child process per side.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
from calculators import HORIZON, SCHEME, pd_end2end, pk_end2end
from ingest import _reset_peak_rss, _status_bytes, generate, instants

from pipelinekit._rows import _RECORDS  # the library's bulk record validator
from pipelinekit.engine.reference import CHUNK  # records per validation call, as ingestion
from pipelinekit.events import SHARED_TZ

STAGES = {s.key: s for s in SCHEME.stages}
WEIGHT = {s.key: s.weight for s in SCHEME.stages}
WON = {s.key for s in SCHEME.won_stages}


def _validated(records: list[dict[str, Any]]) -> tuple[list[Any], ...]:
    """Columns of what the answer needs: type, opportunity id, at, stage, amount, close, id."""
    context: dict[str, Any] = {"assume_tz": None, SHARED_TZ: {}}
    cols: tuple[list[Any], ...] = ([], [], [], [], [], [], [])
    kind, oid, at, stage, amount, close, eid = cols
    for start in range(0, len(records), CHUNK):
        for r in _RECORDS.validate_python(records[start : start + CHUNK], context=context):
            get = r.get
            kind.append(r["type"])
            oid.append(r["opportunity_id"])
            at.append(r["at"])
            stage.append(get("stage"))
            amount.append(get("amount"))
            close.append(get("expected_close", 0))  # 0: not given (None: cleared)
            eid.append(get("event_id"))
    return cols


def _replay(
    cols: tuple[list[Any], ...], groups: Iterable[list[int]], cut: datetime | None
) -> dict[str, list[Any]]:
    """Each opportunity's state after its events up to ``cut`` (all if ``None``), one
    opportunity at a time (as pipelinekit does: 3x faster than jumping between all open
    deals in time order at 1M events): ``[stage, amount, expected close, stage entered]``."""
    kind, oid, at, stage, amount, close, _ = cols
    states: dict[str, list[Any]] = {}
    for group in groups:
        first = group[0]
        if cut is not None and at[first] > cut:
            continue
        if kind[first] != "opened":
            raise ValueError(f"record {first}: the opportunity was not opened first")
        if stage[first] not in STAGES:
            raise ValueError(f"record {first}: unknown stage")
        c = close[first]
        state = [stage[first], amount[first], None if c == 0 else c, at[first]]
        states[oid[first]] = state
        for i in group[1:]:
            if cut is not None and at[i] > cut:
                break
            k = kind[i]
            if k == "stage_changed":
                if stage[i] not in STAGES:
                    raise ValueError(f"record {i}: unknown stage")
                state[0], state[3] = stage[i], at[i]
            elif k == "amount_changed":
                state[1] = amount[i]
            elif k == "close_date_changed":
                state[2] = close[i]
            elif k == "opened":
                raise ValueError(f"record {i}: opened twice")
    return states


def sketch_end2end(records: list[dict[str, Any]], as_of: datetime) -> Any:
    cols = _validated(records)
    ids = [e for e in cols[6] if e is not None]
    if len(set(ids)) != len(ids):
        raise ValueError("repeated event ids (the sketch does not de-duplicate)")
    oid, at = cols[1], cols[2]
    groups: dict[str, list[int]] = {}  # each opportunity's events
    for i, o in enumerate(oid):  # in input order: sequential reads
        group = groups.get(o)
        if group is None:
            groups[o] = [i]
        else:
            group.append(i)
    for group in groups.values():  # then in time order (stable: ties keep input order)
        group.sort(key=at.__getitem__)
    _replay(cols, groups.values(), None)  # ingestion: every event through the state machine
    snapshot = _replay(cols, groups.values(), as_of)  # then the snapshot at as_of
    return _report(snapshot), _weighted(snapshot, as_of)


def _report(snapshot: dict[str, list[Any]]) -> dict[str, tuple[int, Decimal, Decimal]]:
    sums: dict[str, list[Any]] = {}
    for stage, amount, _, _ in snapshot.values():
        cell = sums.get(stage)
        if cell is None:
            cell = sums[stage] = [0, Decimal(0), Decimal(0)]
        cell[0] += 1
        if amount is not None:
            cell[1] += amount
            weight = WEIGHT[stage]
            if weight is not None:
                cell[2] += amount * weight / 100
    return {stage: (n, a, w) for stage, (n, a, w) in sums.items()}


def _month(d: date) -> tuple[int, int]:
    return d.year, d.month


def _weighted(snapshot: dict[str, list[Any]], as_of: datetime) -> dict[str, list[Any]]:
    today = as_of.date()
    first = _month(today)
    months = [first]
    for _ in range(HORIZON - 1):
        y, m = months[-1]
        months.append((y + m // 12, m % 12 + 1))
    labels = {ym: f"{ym[0]:04d}-{ym[1]:02d}" for ym in months}
    start = datetime(*first, 1, tzinfo=as_of.tzinfo)
    out: dict[str, list[Any]] = {}
    for stage, amount, close, entered in snapshot.values():
        s = STAGES[stage]
        if s.is_open:
            if close is None:
                bucket = "no close date"
            elif close < today:
                bucket = "overdue"
            else:
                bucket = labels.get(_month(close), "later")
            row = out.setdefault(bucket, [0, Decimal(0), Decimal(0)])
            row[0] += 1
            row[1] += amount * WEIGHT[stage] / 100
        elif stage in WON and entered >= start:
            out.setdefault(labels[first], [0, Decimal(0), Decimal(0)])[2] += amount
    return out


def check(sketch: Any, mine: Any) -> list[str]:
    """The sketch's answer against pipelinekit's: counts exact, money within half a cent."""
    report, weighted = sketch
    problems = []
    half = Decimal("0.005")
    for cell in mine[0].cells:
        if not cell.stage:  # a total row
            continue
        n, a, w = report.get(cell.stage, (0, Decimal(0), Decimal(0)))
        if (n, a) != (cell.count, cell.amount) or abs(w - (cell.weighted or 0)) > half:
            problems.append(f"report {cell.stage}: sketch {n} {a} {w}, pipelinekit {cell}")
    for row in mine[1].rows:
        n, e, w = weighted.get(row.bucket, (0, Decimal(0), Decimal(0)))
        if n != row.deals or abs(e - row.expected) > half or abs(w - (row.won or 0)) > half:
            problems.append(f"weighted {row.bucket}: sketch {n} {e} {w}, pipelinekit {row}")
    extra = (set(report) - {c.stage for c in mine[0].cells}) | (
        set(weighted) - {r.bucket for r in mine[1].rows}
    )
    problems += [f"the sketch has a stage or bucket pipelinekit lacks: {x}" for x in extra]
    return problems


SIDES: dict[str, Callable[[list[dict[str, Any]], datetime], Any]] = {
    "pipelinekit": pk_end2end,
    "sketch": sketch_end2end,
    "validation": lambda records, as_of: _validated(records),  # step 1 of the sketch alone
    "pandas": pd_end2end,
}


def memory_child(side: str, n_events: int, seed: int) -> None:
    """Peak RSS rise of one side (the method of ``ingest.py``), printed as JSON."""
    records = generate(n_events, seed)
    as_of, _ = instants(records)
    gc.collect()
    reset = _reset_peak_rss()
    before = _status_bytes("VmRSS")
    SIDES[side](records, as_of)
    print(json.dumps({"rss": _status_bytes("VmHWM") - before, "reset": reset}))


def measure_memory(side: str, n_events: int, seed: int) -> int:
    command = [sys.executable, __file__, "--memory-child", side, "--events", str(n_events)]
    out = subprocess.run(
        [*command, "--seed", str(seed)], check=True, capture_output=True, text=True
    )
    rss: int = json.loads(out.stdout.strip().splitlines()[-1])["rss"]
    return rss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child, args.events, args.seed)
        return 0
    records = generate(args.events, args.seed)
    as_of, _ = instants(records)
    sides = SIDES
    times: dict[str, list[float]] = {side: [] for side in sides}
    outs: dict[str, Any] = {}
    for _ in range(args.repeat):  # alternate the sides: a busy neighbour hits all three
        for side, fn in sides.items():
            gc.collect()
            t0 = time.perf_counter()
            outs[side] = fn(records, as_of)
            times[side].append(time.perf_counter() - t0)
    problems = check(outs["sketch"], outs["pipelinekit"])
    print(
        f"python {sys.version.split()[0]}, pandas {pd.__version__}, {args.events} events,"
        f" repeat={args.repeat} (median)"
    )
    base = statistics.median(times["pandas"])
    memory = {} if args.no_memory else {s: measure_memory(s, args.events, args.seed) for s in sides}
    for side, ts in times.items():
        med = statistics.median(ts)
        line = f"{side:<12} {med:8.3f} s  {med / base:5.2f}x pandas  (min {min(ts):.3f})"
        if memory:
            mb = memory[side] / 2**20
            line += f"  peak {mb:6.0f} MB  {memory[side] / max(memory['pandas'], 1):5.2f}x pandas"
        print(line)
    for p in problems:
        print("DISAGREE", p)
    print("sketch agrees with pipelinekit:", "yes" if not problems else "NO")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
