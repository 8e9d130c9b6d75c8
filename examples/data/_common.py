"""Helpers shared by the real-data examples: where the data is, reading CSV, printing.

The data sets are not part of the repository (see ``docs/real-data.md``): they live in a
``shared/data`` folder *beside* the checkout (``<dir>/<clone>`` and ``<dir>/shared/data``).
:func:`data_root` looks for them, in this order:

1. the folder named by the environment variable ``PIPELINEKIT_DATA``, if it is set;
2. ``Path(__file__).resolve().parents[3] / "shared" / "data"``: for
   ``<dir>/<clone>/examples/data/x.py`` that is ``<dir>/shared/data``;
3. ``shared/data`` in any further ancestor (so a git worktree one level deeper,
   ``<dir>/<worktrees>/<branch>``, still finds ``<dir>/shared/data``).

Only the standard library is used here (``csv``, ``pathlib``): pandas is a development
dependency of pipelinekit, not something its examples need.
"""

from __future__ import annotations

import csv
import os
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pipelinekit as pk
from pipelinekit.errors import TransitionError
from pipelinekit.forecasts.backtest import BacktestResult

DATA_ENV = "PIPELINEKIT_DATA"


def data_root() -> Path | None:
    """The ``shared/data`` folder, or ``None`` when it cannot be found."""
    env = os.environ.get(DATA_ENV)
    if env:
        path = Path(env).expanduser()
        return path if path.is_dir() else None
    here = Path(__file__).resolve()
    for parent in here.parents[3:]:
        candidate = parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return None


def data_dir_or_exit(folder: str, files: Sequence[str]) -> Path:
    """``<data root>/<folder>`` if it holds ``files``; otherwise exit with a clear message."""
    root = data_root()
    where = root / folder if root is not None else None
    missing = [f for f in files if where is None or not (where / f).is_file()]
    if where is None or missing:
        env = os.environ.get(DATA_ENV)
        looked = (
            f"{DATA_ENV}={env}"
            if env
            else f"{Path(__file__).resolve().parents[3] / 'shared' / 'data'} and the folders above"
        )
        sys.exit(
            f"data set {folder!r} not found (looked in {looked}; missing: {', '.join(missing)})."
            f" Put the shared data beside the checkout as shared/data/{folder}/ or set "
            f"{DATA_ENV} to the folder holding {folder}/."
        )
    return where


def read_csv(path: Path) -> list[dict[str, str]]:
    """Every row of a CSV file as a dict of strings (a UTF-8 byte-order mark is dropped)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def set_aside(history: pk.History) -> dict[str, int]:
    """Records lenient mode set aside, counted per reason (most frequent first).

    Illegal moves are keyed by rule and move (``"forward: negotiation-review ->
    prospecting"``), a record for an opportunity not yet opened by ``"not-opened"``, other
    bad records by field and reason; duplicates by ``"duplicate event_id"``.
    """
    counts: Counter[str] = Counter()
    for rejection in history.ingest.rejected:
        err = rejection.error
        if isinstance(err, TransitionError):
            if err.rule == "not-opened":
                key = "not-opened: a change dated before the opportunity was opened"
            else:
                key = f"{err.rule}: {err.from_stage} -> {err.to_stage}"
        else:
            key = f"{err.field}: {err.reason}"
        counts[key] += 1
    counts["duplicate event_id"] += len(history.ingest.duplicates)
    return {k: n for k, n in counts.most_common() if n}


def print_ingest(title: str, history: pk.History) -> dict[str, int]:
    """Print how the records were accounted for and what was set aside; return the counts."""
    r = history.ingest
    print(
        f"{title}: {r.total} records -> {r.applied} applied, {len(r.duplicates)} duplicates, "
        f"{len(r.rejected)} set aside"
    )
    reasons = set_aside(history)
    for reason, n in reasons.items():
        print(f"  {n:>5}  {reason}")
    return reasons


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, Decimal):
        return f"{value:,.2f}" if value != value.to_integral_value() else f"{value:,.0f}"
    return str(value)


def print_table(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """Print rows as a plain text table with the given columns."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    head = [columns[0].ljust(widths[0])]
    head += [c.rjust(w) for c, w in zip(columns[1:], widths[1:], strict=True)]
    print("  " + "  ".join(head).rstrip())
    for r in cells:
        line = [r[0].ljust(widths[0])]
        line += [v.rjust(w) for v, w in zip(r[1:], widths[1:], strict=True)]
        print("  " + "  ".join(line))


def section(title: str) -> None:
    """Print a section heading."""
    print(f"\n== {title}")


def backtest_months(bt: BacktestResult) -> dict[str, dict[str, Any]]:
    """The backtest's forecasters side by side, one row per first target period.

    Each row: ``month`` (the period label), ``as_of``, ``actual``, one column per forecaster
    (its forecast) and ``open`` (deals open at ``as_of``, each scored).
    """
    rows: dict[str, dict[str, Any]] = {}
    for point in bt.points:
        row = rows.setdefault(point.periods[0], {"month": point.periods[0], "as_of": point.as_of})
        row["actual"] = point.actual
        row[point.forecaster] = point.forecast
        row["open"] = point.deals_scored
    return rows
