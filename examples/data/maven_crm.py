"""Maven Analytics "CRM Sales Opportunities" (fictional B2B hardware seller, 2016-2017).

Data: ``shared/data/maven-crm/`` (``sales_pipeline.csv``: 8,800 opportunities;
``products.csv``: list prices). Origin, licence and quirks: its ``SOURCE.txt``.

Stage scheme: Maven's own four stages, "Prospecting > Engaging > Won / Lost" (its data
dictionary). The data set gives no probabilities, so the stages carry no weights (weighted
figures are not available; counts, amounts, win/loss, conversion and velocity are).

Mapping (one CSV row -> up to three records)::

    column          becomes
    --------------  ------------------------------------------------------------------
    opportunity_id  opportunity_id of every record
    engage_date     "opened" at that date, stage "engaging" (the only date before the
                    close: the date the Engaging stage was initiated). Empty for the 500
                    Prospecting rows: their "opened" record has no time and lenient mode
                    sets it aside ("at: ... got None") - we do not invent a date.
    deal_stage      Prospecting/Engaging: no further record (open at the end);
                    Won -> "stage_changed" to "won" at close_date;
                    Lost -> "stage_changed" to "lost" at close_date
    close_date      the time of the won/lost record
    close_value     Won: "amount_changed" to close_value at close_date, just before the
                    stage change (the revenue of the deal). Lost: always 0 in the data
                    (revenue, not the value at stake), so it is not used: a lost deal
                    keeps its list price.
    product         "opened" product; its list price (products.csv sales_price) is the
                    opened amount - the value at stake while the deal is open. The
                    pipeline spells "GTX Pro" as "GTXPro"; we map it to the products row.
    sales_agent     "opened" owner
    account         "opened" account (empty for 1,425 rows: left out)

Dates are bare ISO dates without a time or zone: a bare date means the start of that day,
and ``assume_tz=UTC`` gives it a zone (the data says nothing about zones; whole days are all
that matter here). No currency is given anywhere, so amounts carry none.

Sections: the pipeline by stage at the end (``PipelineByStage``: open, won and lost; amounts
are list prices while open or lost and ``close_value`` once won), win/loss overall, per
agent and per product (``WinLoss``; the data gives no loss reasons), velocity, funnel, lead
requirement, weak areas, and a backtest.

Backtest: ``HistoricalForecast`` and ``ProjectionForecast`` (one month ahead) at the start
of every month from
2017-04-01 to 2017-12-01, each forecast made from ``history.until(as_of)`` and compared with
the ``close_value`` won in that month. The first close in the data is on 2017-03-01, so
2017-04-01 is the first ``as_of`` with closed deals to learn from; December 2017 is the
last month the data covers in full. ``WeightedForecast`` does not apply: the scheme has no
weights and the data has no expected close dates. Two things to read the result with: (1)
1,589 deals are still Engaging at the end of the data, many engaged months before. A win
rate learned from closed deals only would give those never-closing deals the same chance as
the others and forecast about half as much again as is won; both forecasters count the open
deals (the historical one through the cumulative incidence of winning given a deal's age, the
projection through what share of the deals open at each past month's start was won within
it), and every deal open at an ``as_of`` is scored on whether it was won within the month.
(2) A close dated on the first of a month is at 00:00 that day, so it is already known at
``as_of`` (in the forecast's ``won`` part) - the bare-date convention, not look-ahead.

Run: ``python examples/data/maven_crm.py`` (finds ``shared/data`` beside the checkout, or
set ``PIPELINEKIT_DATA``).
"""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal
from pathlib import Path
from typing import Any

from _common import data_dir_or_exit, print_ingest, print_table, read_csv, section

import pipelinekit as pk
from pipelinekit.forecasts.backtest import backtest
from pipelinekit.forecasts.historical import HistoricalForecast
from pipelinekit.forecasts.projection import ProjectionForecast
from pipelinekit.reports.funnel import FunnelConversion
from pipelinekit.reports.lead_requirement import LeadRequirement
from pipelinekit.reports.pipeline_by_stage import PipelineByStage
from pipelinekit.reports.velocity import Velocity
from pipelinekit.reports.weak_areas import WeakAreas
from pipelinekit.reports.win_loss import WinLoss

FOLDER = "maven-crm"
FILES = ("sales_pipeline.csv", "products.csv")
AS_OF = "2018-01-01T00:00:00+00:00"  # the day after the last close date (2017-12-31)
BACKTEST_FROM = "2017-04-01T00:00:00+00:00"  # the first close is on 2017-03-01
BACKTEST_TO = "2017-12-01T00:00:00+00:00"  # December 2017: the last full month of data

SCHEME = pk.StageScheme.model_validate(
    {
        "name": "maven-crm",
        "description": "Maven's deal stages: Prospecting > Engaging > Won / Lost; no weights.",
        "stages": [
            {"key": "prospecting", "label": "Prospecting"},
            {"key": "engaging", "label": "Engaging"},
            {"key": "won", "label": "Won", "outcome": "won"},
            {"key": "lost", "label": "Lost", "outcome": "lost"},
        ],
    }
)

# The pipeline's product names that differ from products.csv.
PRODUCT_ALIASES = {"GTXPro": "GTX Pro"}


def records(pipeline_rows: list[dict[str, str]], prices: dict[str, str]) -> list[dict[str, Any]]:
    """Turn sales_pipeline.csv rows into pipelinekit records (see the module docstring)."""
    out: list[dict[str, Any]] = []
    for row in pipeline_rows:
        oid = row["opportunity_id"]
        product = PRODUCT_ALIASES.get(row["product"], row["product"])
        out.append(
            {
                "type": "opened",
                "opportunity_id": oid,
                "at": row["engage_date"] or None,
                "stage": "engaging",
                "amount": prices.get(product),
                "owner": row["sales_agent"] or None,
                "account": row["account"] or None,
                "product": product,
            }
        )
        stage = row["deal_stage"]
        if stage in ("Won", "Lost"):
            if stage == "Won":
                out.append(
                    {
                        "type": "amount_changed",
                        "opportunity_id": oid,
                        "at": row["close_date"],
                        "amount": row["close_value"],
                    }
                )
            out.append(
                {
                    "type": "stage_changed",
                    "opportunity_id": oid,
                    "at": row["close_date"],
                    "stage": stage.lower(),
                }
            )
    return out


def stage_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``PipelineByStage`` rows for printing: a stage's key, or a total's label."""
    return [
        {**r, "stage": r["stage"] or r["label"], "share": r["amount_share"]}
        for r in rows
        if r["level"] == "stage" or r["label"] == "Total open"
    ]


def load_history(data_dir: Path) -> pk.History:
    """The data set as a History (lenient mode; what is set aside is in ``history.ingest``).

    Args:
        data_dir: the ``maven-crm`` folder.
    """
    rows = read_csv(data_dir / "sales_pipeline.csv")
    prices = {p["product"]: p["sales_price"] for p in read_csv(data_dir / "products.csv")}
    return pk.History.from_records(
        records(rows, prices), scheme=SCHEME, mode="lenient", assume_tz=UTC
    )


def main(data_dir: Path) -> dict[str, Any]:
    """Map the data set, build the history in lenient mode, print and return key figures.

    Args:
        data_dir: the ``maven-crm`` folder.
    """
    rows = read_csv(data_dir / "sales_pipeline.csv")
    prices = {p["product"]: p["sales_price"] for p in read_csv(data_dir / "products.csv")}
    history = pk.History.from_records(
        records(rows, prices), scheme=SCHEME, mode="lenient", assume_tz=UTC
    )

    section("Ingest (lenient mode)")
    print(f"{len(rows)} CSV rows -> {history!r}")
    reasons = print_ingest("maven-crm", history)

    section(f"Pipeline by stage as of {AS_OF} (PipelineByStage)")
    by_stage = PipelineByStage().compute(history, as_of=AS_OF)
    print_table(
        stage_table(by_stage.to_records()),
        ["stage", "section", "count", "amount", "share"],
    )
    print("  amount: list prices while open (and for lost deals), close_value once won;")
    print("  share: of the section's amount")
    if not by_stage.weighted_available:
        print("  weighted figures: not available (the scheme has no weights)")

    section("Win/loss of every deal closed by the end (WinLoss)")
    columns = ["won", "lost", "win_rate", "won_amount", "average_won", "lost_amount"]
    overall = WinLoss().compute(history, as_of=AS_OF)
    print_table([overall.overall.to_record()], columns)
    print("  lost_amount: the list prices of the lost deals (close_value is 0 when lost)")
    reasons_lost = ", ".join(f"{r.reason} {r.count}" for r in overall.loss_reasons)
    print(f"  loss reasons: {reasons_lost} (the data gives none)")

    by_agent = WinLoss(by="owner").compute(history, as_of=AS_OF)
    agents = sorted(by_agent.groups, key=lambda g: (-g.won, g.group or ""))
    print(f"\n  per agent: top 5 of {len(agents)} by won deals (WinLoss by owner)")
    print_table(
        [{"agent": g.group, **g.to_record()} for g in agents[:5]],
        ["agent", "won", "lost", "win_rate", "won_amount"],
    )
    rates = sorted(agents, key=lambda g: (g.win_rate or 0.0, g.group or ""))
    low, high = rates[0], rates[-1]
    print(
        f"  win rate per agent from {low.win_rate:.3f} ({low.group}) "
        f"to {high.win_rate:.3f} ({high.group})"
    )

    by_product = WinLoss(by="product").compute(history, as_of=AS_OF)
    print("\n  per product (WinLoss by product)")
    print_table(
        [{"product": g.group, **g.to_record()} for g in by_product.groups],
        ["product", "won", "lost", "win_rate", "won_amount", "average_won"],
    )

    section("Sales cycle and velocity (Velocity)")
    velocity = Velocity().compute(history, as_of=AS_OF)
    print_table(
        velocity.summary_records(),
        ["won_cycle_median_days", "won_cycle_mean_days", "lost_cycle_median_days"],
    )
    print(
        f"  pipeline velocity: {velocity.open} open x win rate {velocity.win_rate:.3f} x "
        f"average won {velocity.average_won_amount:.2f} / {velocity.won_cycle_mean_days:.2f} "
        f"days = {velocity.pipeline_velocity:.2f} per day"
    )

    section("Funnel conversion (FunnelConversion)")
    funnel = FunnelConversion().compute(history, as_of=AS_OF)
    print_table(funnel.to_records(), ["stage", "reached", "won", "lost_here", "to_won"])

    section("Lead requirement for 1,000,000 of revenue (LeadRequirement)")
    lead = LeadRequirement(target=Decimal(1_000_000)).compute(history, as_of=AS_OF)
    print_table(
        lead.summary_records(),
        ["lead_to_win_rate", "average_won_amount", "deals_needed", "leads_needed"],
    )

    section("Weak areas (WeakAreas, Little's law)")
    weak = WeakAreas().compute(history, as_of=AS_OF)
    print_table(weak.to_records(), ["stage", "expected_count", "actual_count", "status"])

    section("Backtest: HistoricalForecast one month ahead, monthly 2017-04 .. 2017-12")
    learned = WinLoss().compute(history, as_of=BACKTEST_FROM).overall
    print(
        f"  at the first as_of ({BACKTEST_FROM[:10]}) {learned.closed} deals had closed "
        f"({learned.won} won, {learned.win_rate:.3f}) to learn from;"
    )
    print("  the first close in the data is on 2017-03-01")
    bt = backtest(
        {"historical": HistoricalForecast(horizon=1), "projection": ProjectionForecast(horizon=1)},
        history,
        as_of_dates=(BACKTEST_FROM, BACKTEST_TO, "month"),
    )
    print_table(
        [{**a, "scored": a["deals_scored"]} for a in bt.summary()],
        ["forecaster", "points", "mae", "wape", "bias", "coverage", "ece", "scored"],
    )
    points = [
        {
            "as_of": p.as_of.date().isoformat(),
            "open": p.deals_scored,
            "forecast": p.forecast,
            "actual": p.actual,
            "error": p.error,
            "brier": p.brier,
        }
        for p in bt.points
        if p.forecaster == "historical"
    ]
    print("  the historical forecaster's months:")
    print_table(points, ["as_of", "open", "forecast", "actual", "error", "brier"])
    print("  open: deals open at as_of, each scored on whether it was won within the month")
    print("  (still open at its end: not won); actual: close_value won in that month")

    return {
        "rows": len(rows),
        "set_aside": reasons,
        "open": velocity.open,
        "won": velocity.won,
        "lost": velocity.lost,
        "win_rate": velocity.win_rate,
        "won_amount": velocity.won_amount,
        "won_cycle_median_days": velocity.won_cycle_median_days,
        "leads_needed": lead.leads_needed,
        "by_stage": {c.stage: (c.count, c.amount) for c in by_stage.cells},
        "weighted_available": by_stage.weighted_available,
        "win_loss_by_agent": {g.group: (g.won, g.lost, g.win_rate) for g in by_agent.groups},
        "win_loss_by_product": {g.group: (g.won, g.lost, g.won_amount) for g in by_product.groups},
        "loss_reasons": {r.reason: r.count for r in overall.loss_reasons},
        "closed_before_backtest": learned.closed,
        "backtest": [
            {
                "as_of": p.as_of.date().isoformat(),
                "period": " ".join(p.periods),
                "forecast": p.forecast,
                "actual": p.actual,
                "open": p.deals_scored,
            }
            for p in bt.points
            if p.forecaster == "historical"
        ],
        "backtest_wape": bt.accuracy_of("historical").wape,
        "projection_wape": bt.accuracy_of("projection").wape,
    }


if __name__ == "__main__":
    main(data_dir_or_exit(FOLDER, FILES))
