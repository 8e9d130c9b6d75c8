"""A real Salesforce export (Preppin' Data 2022 week 23): Opportunity + Opportunity History.

Data: ``shared/data/preppin-sf-opps/`` - ``Opportunity.csv`` (219 opportunities, 45 columns),
``Opportunity History.csv`` (584 stage changes: OppID, CreatedDate, StageName, SortOrder) and
the challenge's published answer ``Cleaned Salesforce Data.csv`` (a stage timeline per
opportunity). Origin, licence and quirks: its ``SOURCE.txt``.

Loading: :func:`pipelinekit.adapters.salesforce.to_records` (its docstring has the
mapping table): ``opened`` at ``Opportunity.CreatedDate`` in the stage of the opportunity's
earliest history row, with its Amount, CloseDate, Name, OwnerId, AccountId and LeadSource;
a ``stage_changed`` per history row at its CreatedDate (rows of one day ordered by
SortOrder). Dates are DD/MM/YYYY (``date_order="dmy"``), without a zone (UTC). The stage
names are the ``salesforce`` preset's labels; one the preset lacks would be set aside as
``stage: unknown stage key ...``: nothing is guessed. The export has no currency column, so
amounts carry none. Probability, ExpectedRevenue and ForecastCategory are not used (the
preset's weights decide); IsClosed and IsWon contradict StageName for 137 of the 219
opportunities (``salesforce.contradictions``, printed), and the stage follows StageName.

One assumption of this example on top of the adapter (:func:`records`): opportunities whose
history is only their closing row are opened in the preset's first stage, see below.

What lenient mode sets aside: the history has stage changes dated *before* the
opportunity's CreatedDate (43 rows; "not-opened": a stage cannot be entered before the deal
exists) and, read in date order, moves *backwards* (e.g. Negotiation/Review -> Prospecting),
which the preset's ``forward`` policy refuses - together with the later rows of the same deal
that only make sense after such a move. The content of this export is randomised demo data,
and the dates are where it shows: the exported ``Opportunity.StageName`` (Salesforce's own
current stage) is, for every one of the 219 opportunities, the *furthest* stage of its history
(highest SortOrder), which is exactly where the preset's forward-only replay ends; the
published timeline, which orders the same rows by date, ends elsewhere for 21 of them.

For comparison the example also replays the rows with :data:`ANY_ORDER`, the preset with one
change, ``transitions="any"`` (same stages and weights, backward moves allowed as Salesforce
allows them, closed deals still never reopened): it sets aside only the 43 "not-opened" rows
and ends every opportunity where the published timeline ends. The reports use the preset.

Opportunities whose history is only their closing row: 47 (34 Closed Won, 13 Closed Lost),
each row dated CreatedDate + 10 days. Opened in that closed stage they would be won or lost
on the day they were created, 10 days before the history (and the published timeline) says;
they are opened instead in :data:`OPENING_STAGE`, the preset's first stage, Prospecting - an
assumption, as the export does not say where they started - and close on their history row's
date. Every closed deal then closes on the day the published timeline gives. The price: 47
stays of 10 days in prospecting that the export does not show, in the time-in-stage table
and the funnel (13 of the 28 deals lost at prospecting are these).

Reports: pipeline by stage at the end (``PipelineByStage``, the preset's weights; beside it
the any-order replay's counts and ``Opportunity.StageName``'s), win/loss overall and by
owner (``WinLoss``; the export has no loss reasons), time in stage, sales cycle and velocity
(``Velocity``), funnel conversion, a weighted forecast as of mid-2022, and a backtest.

Backtest: ``WeightedForecast`` (the preset's weights, placed by CloseDate) against
``HistoricalForecast`` (the chance of winning from each stage and when, learned from every deal
before ``as_of``, open ones included) and ``ProjectionForecast`` (what share of the deals open
at the start of each past month, by stage and age, was won within it), each month from June
to November 2022 forecast at its first day (:data:`BACKTEST_AS_OF`) and compared with the
revenue then won in it. 80 deals had closed before the first ``as_of`` (the first closes are
in Dec 2021 - Jan 2022); December 2022 is left out because the export ends on 24 December.
Two caveats make it a demonstration rather than a verdict. The export holds only CloseDate's
final value, and for every one of the 146 closed deals it is the day the deal closed: the
weighted forecast's timing would see the future, yet its overdue deals (a forecast of the
current month) make it promise several times what is won. And the history is randomised:
before June no lost deal had got past prospecting in the preset replay, so closed deals alone
would say every later stage wins; counting the deals still open there is what keeps the
learned forecasters near the actual.

Run: ``python examples/data/salesforce_export.py``.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

from _common import (
    backtest_months,
    data_dir_or_exit,
    print_ingest,
    print_table,
    read_csv,
    section,
)

import pipelinekit as pk
from pipelinekit.adapters import salesforce
from pipelinekit.forecasts.backtest import backtest
from pipelinekit.forecasts.historical import HistoricalForecast
from pipelinekit.forecasts.projection import ProjectionForecast
from pipelinekit.forecasts.weighted import WeightedForecast
from pipelinekit.reports.funnel import FunnelConversion
from pipelinekit.reports.pipeline_by_stage import PipelineByStage
from pipelinekit.reports.velocity import Velocity
from pipelinekit.reports.win_loss import WinLoss

FOLDER = "preppin-sf-opps"
FILES = ("Opportunity.csv", "Opportunity History.csv")

PRESET = pk.schemes.get("salesforce")
STAGE_KEYS = {stage.label: stage.key for stage in PRESET.stages}
"""Salesforce StageName (the preset's labels, e.g. ``"Negotiation/Review"``) -> preset key."""
CLOSED_LABELS = frozenset(s.label for s in PRESET.stages if s.is_won or s.is_lost)
OPENING_STAGE = PRESET.stages[0].label
"""The stage an opportunity whose history holds only its closing row is opened in."""

ANY_ORDER = pk.StageScheme.model_validate(
    {
        **PRESET.model_dump(mode="json"),
        "name": "salesforce-any-order",
        "transitions": "any",
        "description": "The Salesforce preset, but open deals may move to any stage, "
        "backwards too, as Salesforce itself allows.",
    }
)

FORECAST_AS_OF = "2022-06-30T00:00:00+00:00"  # mid-way through the export's history
BACKTEST_AS_OF = ("2022-06-01T00:00:00+00:00", "2022-11-01T00:00:00+00:00")
"""The first and last ``as_of`` of the monthly backtest (see the module docstring)."""
TOP_OWNERS = 8


def records(
    opportunities: list[dict[str, str]], history_rows: list[dict[str, str]]
) -> list[dict[str, Any]]:
    """The export as records (the Salesforce adapter), each opportunity whose earliest
    history row is a closing one opened in :data:`OPENING_STAGE` instead (see the module
    docstring)."""
    recs = salesforce.to_records(
        opportunities=opportunities, history=history_rows, scheme=PRESET, date_order="dmy"
    )
    closed = {STAGE_KEYS[label] for label in CLOSED_LABELS}
    for record in recs:
        if record["type"] == "opened" and record["stage"] in closed:
            record["stage"] = STAGE_KEYS[OPENING_STAGE]
    return recs


def load_history(data_dir: Path) -> pk.History:
    """The export as a History under the Salesforce preset (lenient mode).

    Args:
        data_dir: the ``preppin-sf-opps`` folder.
    """
    opportunities = read_csv(data_dir / "Opportunity.csv")
    history_rows = read_csv(data_dir / "Opportunity History.csv")
    return pk.History.from_records(
        records(opportunities, history_rows), scheme=PRESET, mode="lenient"
    )


def main(data_dir: Path) -> dict[str, Any]:
    """Map the export, build the history in lenient mode, print and return key figures.

    Args:
        data_dir: the ``preppin-sf-opps`` folder.
    """
    opportunities = read_csv(data_dir / "Opportunity.csv")
    history_rows = read_csv(data_dir / "Opportunity History.csv")
    recs = records(opportunities, history_rows)

    section("Quirks of the export (columns not used)")
    weight = {s.label: s.weight for s in PRESET.stages}
    prob_off = sum(
        1 for o in opportunities if Decimal(o["Probability"]) != weight.get(o["StageName"])
    )
    print(f"  {prob_off} of {len(opportunities)} rows: Probability is not the weight of StageName")
    unknown = sorted({r["StageName"] for r in history_rows} - set(STAGE_KEYS))
    print(f"  history stage names not in the preset: {unknown or 'none'}")
    contradictions = salesforce.contradictions(opportunities=opportunities, scheme=PRESET)
    print(
        f"  {len(contradictions.rows)} of {contradictions.checked} rows: StageName disagrees "
        "with IsClosed/IsWon (the stage follows StageName)"
    )

    section("Ingest with the Salesforce preset (lenient mode; reported on below)")
    history = pk.History.from_records(recs, scheme=PRESET, mode="lenient")
    reasons = print_ingest("preset 'salesforce'", history)
    print(f"  {history!r}")

    section("Ingest with the preset in any order (for comparison)")
    any_order = pk.History.from_records(recs, scheme=ANY_ORDER, mode="lenient")
    any_order_reasons = print_ingest("'salesforce-any-order'", any_order)

    assert history.end is not None
    as_of = history.end
    section(f"Pipeline by stage at the end ({as_of.date()}; PipelineByStage, preset weights)")
    report = PipelineByStage().compute(history, as_of=as_of)
    final = {c.stage: c.count for c in report.cells if c.count}
    final_any = Counter(o.stage for o in any_order.as_of(as_of).values())
    exported = Counter(STAGE_KEYS[o["StageName"]] for o in opportunities)
    opens = [s.key for s in PRESET.open_stages]
    stage_rows = []
    for row in report.rows:
        if row.level == "total" and row.section != "open":
            continue  # one closed stage per section: its total would repeat it
        if row.level == "stage" and not (row.count or final_any[row.stage or ""]):
            continue
        keys = [row.stage] if row.stage else opens
        stage_rows.append(
            {
                "stage": row.stage or "total open",
                "deals": row.count,
                "amount": row.amount,
                "weighted": row.weighted,
                "share": row.amount_share if row.section == "open" else None,
                "any_order": sum(final_any[k] for k in keys),
                "StageName": sum(exported[k] for k in keys),
            }
        )
    print_table(
        stage_rows, ["stage", "deals", "amount", "weighted", "share", "any_order", "StageName"]
    )
    pipeline = history.as_of(as_of)
    agree = sum(1 for o in opportunities if pipeline[o["Id"]].stage == STAGE_KEYS[o["StageName"]])
    print(f"  preset replay ends at Opportunity.StageName for {agree} of {len(opportunities)}")
    print("  (any_order: the any-order replay's deals; StageName: Opportunity.StageName counts)")

    section("Win/loss (WinLoss): every deal closed by the end, and by owner")
    win_loss = WinLoss(by="owner").compute(history, as_of=as_of)
    overall = win_loss.overall
    print_table(
        [overall.to_record()],
        ["won", "lost", "win_rate", "won_amount", "lost_amount", "average_won", "average_lost"],
    )
    owners = sorted(win_loss.groups, key=lambda g: (-g.closed, g.group or ""))
    print(f"  {len(owners)} owners; the {TOP_OWNERS} with the most closed deals:")
    print_table(
        [{"owner": g.group, **g.to_record()} for g in owners[:TOP_OWNERS]],
        ["owner", "won", "lost", "win_rate", "won_amount"],
    )
    reasons_lost = ", ".join(f"{r.reason} {r.count}" for r in win_loss.loss_reasons)
    print(f"  loss reasons: {reasons_lost} (the export has no loss-reason column)")

    section("Time in stage, sales cycle and velocity (Velocity)")
    velocity = Velocity().compute(history, as_of=as_of)
    print_table(
        [r for r in velocity.to_records() if r["stays"]],
        ["stage", "stays", "median_days", "mean_days", "p90_days"],
    )
    print(
        f"  won cycle median {velocity.won_cycle_median_days} days, "
        f"lost cycle median {velocity.lost_cycle_median_days} days; "
        f"pipeline velocity {velocity.pipeline_velocity:,.0f} a day"
    )

    section("Funnel conversion (FunnelConversion, any path)")
    funnel = FunnelConversion().compute(history, as_of=as_of)
    print_table(
        [r for r in funnel.to_records() if r["reached"]],
        ["stage", "reached", "won", "lost_here", "to_next", "to_won"],
    )

    section(f"Weighted forecast as of {FORECAST_AS_OF[:10]} (WeightedForecast, 6 months)")
    forecast = WeightedForecast(period="month", horizon=6).compute(history, as_of=FORECAST_AS_OF)
    print_table(forecast.to_records(), ["bucket", "won", "expected", "std", "deals"])

    first, last = BACKTEST_AS_OF
    section(f"Backtest: each month {first[:7]} .. {last[:7]} forecast at its first day")
    bt = backtest(
        {
            "weighted": WeightedForecast(horizon=1),
            "historical": HistoricalForecast(horizon=1),
            "projection": ProjectionForecast(horizon=1),
        },
        history,
        as_of_dates=(first, last, "month"),
    )
    print_table(
        bt.summary(),
        ["forecaster", "points", "mae", "wape", "bias", "coverage", "ece", "deals_scored"],
    )
    by_month = backtest_months(bt)
    for month in by_month.values():
        before = history.as_of(month["as_of"]).values()
        month["closed_before"] = sum(1 for o in before if not o.is_open)
    print_table(
        by_month.values(),
        ["month", "actual", "weighted", "historical", "projection", "open", "closed_before"],
    )
    print(
        "  actual: revenue won in the month; open / closed_before: deals open at its first "
        "day / closed before it.\n  The weighted forecast's timing sees the future: the "
        "export's CloseDate is the close day\n  of every closed deal (see the docstring)."
    )

    return {
        "opportunities": len(opportunities),
        "history_rows": len(history_rows),
        "set_aside": reasons,
        "set_aside_any_order": any_order_reasons,
        "final_stages": final,
        "final_stages_any_order": dict(final_any),
        "agree_with_stage_name": agree,
        "won": velocity.won,
        "lost": velocity.lost,
        "open": velocity.open,
        "win_rate": velocity.win_rate,
        "probability_mismatches": prob_off,
        "contradictions": len(contradictions.rows),
        "stage_amounts": {c.stage: c.amount for c in report.cells if c.count},
        "open_amount": report.total("open").amount,
        "open_weighted": report.total("open").weighted,
        "won_lost_by_owner": {g.group: (g.won, g.lost) for g in win_loss.groups},
        "won_amount": overall.won_amount,
        "closed_on": {o.id: o.closed_at.date() for o in pipeline.values() if o.closed_at},
        "backtest_actual": {m: r["actual"] for m, r in by_month.items()},
        "backtest_points": len(bt.points),
        "backtest": {a.forecaster: a for a in bt.accuracy},
    }


if __name__ == "__main__":
    main(data_dir_or_exit(FOLDER, FILES))
