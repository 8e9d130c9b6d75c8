"""Olist's marketing funnel (Brazil, 2017-2018): marketing-qualified leads and the deals won.

Data: ``shared/data/olist-marketing-funnel/`` - ``olist_marketing_qualified_leads_dataset.csv``
(8,000 leads: mql_id, first_contact_date, landing_page_id, origin) and
``olist_closed_deals_dataset.csv`` (842 deals: mql_id, seller_id, sdr_id, sr_id, won_date,
...). Real, anonymised data; CC BY-NC-SA 4.0 (see its ``SOURCE.txt``).

Stage scheme :data:`SCHEME`: one open stage, ``mql`` (a marketing-qualified lead), then
``won`` (a seller signed) or ``lost``; no weights (the data has no probabilities). It allows
reopening, for the reason below.

Leads that never close: the data only records wins; a lead without a deal is neither won nor
lost in it. Left open, every unwon lead would be *censored* and the lead-to-win rate would be
won / (won + lost) = 100 %. We choose instead: **a lead is lost** :data:`LOST_AFTER_DAYS`
(180) **days after its first contact if it has not been won by then** (180 days is about the
93rd percentile of the first-contact-to-win time of the won leads, so most wins happen
before it). The rule only uses what is known at that moment, so it adds no look-ahead. A
lead won after that (a late win) is *reopened* and moved to ``won`` - hence ``reopen=True``;
its sales cycle still runs from first contact to the win. At :data:`AS_OF` every lead is
older than 180 days, so only leads whose one record was set aside remain open.

Amounts: Olist publishes no deal value (``declared_monthly_revenue`` is 0 for 797 of the 842
deals), so every lead carries an amount of ``1`` without a currency: one seller. Pipeline
"value" is then a number of sellers, and the lead requirement's *revenue target* is a
number of sellers to sign; with a value per seller V, a revenue target R is R / V sellers.

Mapping::

    file / column                   becomes
    ------------------------------  -----------------------------------------------------
    leads.mql_id                    opportunity_id
    leads.first_contact_date        "opened" at that date (stage "mql", amount 1)
    leads.origin                    "opened" source (empty for 60 leads: none)
    leads.landing_page_id           "opened" product (the landing page the lead came from)
    deals.won_date                  "stage_changed" to "won" at that time, actor = sr_id
                                    (the sales representative who closed it)
    (rule above)                    "stage_changed" to "lost" at first contact + 180 days,
                                    reason "no deal 180 days after first contact"
    not used                        seller_id, sdr_id, business_segment, lead_type, ...

Dates and times carry no zone; Olist is in São Paulo, so ``assume_tz`` is
``ZoneInfo("America/Sao_Paulo")`` (a bare first-contact date is the start of that local
day). One deal is dated before its lead's first contact (won 2018-03-06, first contact
2018-03-08): lenient mode sets that won record aside ("not-opened"), and since the lead had
been won by the 180-day mark no lost record is made for it either: it stays open, visible.

Reports: leads by stage (``PipelineByStage``; counts and amounts only, the scheme has no
weights), win/loss overall and by lead origin (``WinLoss``, with the one loss reason the rule
gives), the first-contact-to-win time (``Velocity``), the funnel, the lead requirement, and a
backtest.

Backtest: ``HistoricalForecast`` (the chance of winning from the ``mql`` stage and when,
learned from every lead before ``as_of``, plus new business from past months) against
``ProjectionForecast`` - each month from
January to November 2018 (the months with wins; the first three are in December 2017)
forecast at its first day, São Paulo time (:data:`BACKTEST_AS_OF`), and compared with the
sellers signed in it. No ``WeightedForecast``: the scheme has no weights and the leads no
expected close date. The 180-day rule adds no look-ahead here either: the lost records are
dated at first contact + 180 days, so ``history.until(as_of)``, all a forecaster sees,
holds only the losses known by then. That is what misleads a rate learned from closed leads
only: at each ``as_of`` the leads known to be lost are those first contacted over 180 days
before, while wins are known days after contact, so the win rate among the closed leads
(printed as ``rate_known``) is well above the final 0.105. Both forecasters count the open
leads instead: the historical forecaster through the cumulative incidence of winning (an
open lead stays in the risk set, and its chance depends on how long it has been open), the
``ProjectionForecast`` by measuring what share of the leads open at the start of each past
month was won within it. From June 2018 both still expect some new business, although the
data set has no lead first contacted after May 2018.

Run: ``python examples/data/olist_funnel.py``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from _common import (
    backtest_months,
    data_dir_or_exit,
    print_ingest,
    print_table,
    read_csv,
    section,
)

import pipelinekit as pk
from pipelinekit.forecasts.backtest import backtest
from pipelinekit.forecasts.historical import HistoricalForecast
from pipelinekit.forecasts.projection import ProjectionForecast
from pipelinekit.reports.funnel import FunnelConversion
from pipelinekit.reports.lead_requirement import LeadRequirement
from pipelinekit.reports.pipeline_by_stage import PipelineByStage
from pipelinekit.reports.velocity import Velocity, percentile
from pipelinekit.reports.win_loss import WinLoss

FOLDER = "olist-marketing-funnel"
FILES = ("olist_marketing_qualified_leads_dataset.csv", "olist_closed_deals_dataset.csv")
TZ = ZoneInfo("America/Sao_Paulo")
AS_OF = datetime(2018, 12, 1, tzinfo=TZ)  # after the last win (2018-11-14) and 180-day mark
LOST_AFTER_DAYS = 180
TARGET_SELLERS = 100
BACKTEST_AS_OF = (datetime(2018, 1, 1, tzinfo=TZ), datetime(2018, 11, 1, tzinfo=TZ))
"""The first and last ``as_of`` of the monthly backtest: the months with wins."""

SCHEME = pk.StageScheme.model_validate(
    {
        "name": "olist-leads",
        "description": "Olist seller acquisition: a marketing-qualified lead is won (a seller "
        "signs) or lost (no deal 180 days after first contact; a later win reopens it).",
        "reopen": True,
        "stages": [
            {"key": "mql", "label": "Marketing-qualified lead"},
            {"key": "won", "label": "Won (seller signed)", "outcome": "won"},
            {"key": "lost", "label": "Lost (no deal in 180 days)", "outcome": "lost"},
        ],
    }
)


def records(leads: list[dict[str, str]], deals: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Turn the two tables into pipelinekit records (see the module docstring)."""
    won = {d["mql_id"]: d for d in deals}
    out: list[dict[str, Any]] = []
    for lead in leads:
        oid = lead["mql_id"]
        contact = date.fromisoformat(lead["first_contact_date"])
        out.append(
            {
                "type": "opened",
                "opportunity_id": oid,
                "at": contact.isoformat(),
                "stage": "mql",
                "amount": "1",
                "source": lead["origin"] or None,
                "product": lead["landing_page_id"] or None,
            }
        )
        deal = won.get(oid)
        mark = datetime.combine(contact + timedelta(days=LOST_AFTER_DAYS), datetime.min.time())
        won_at = datetime.fromisoformat(deal["won_date"]) if deal else None
        if deal is not None and won_at is not None:
            out.append(
                {
                    "type": "stage_changed",
                    "opportunity_id": oid,
                    "at": won_at.isoformat(),
                    "stage": "won",
                    "actor": deal["sr_id"] or None,
                }
            )
        if (won_at is None or won_at > mark) and mark.replace(tzinfo=TZ) <= AS_OF:
            out.append(
                {
                    "type": "stage_changed",
                    "opportunity_id": oid,
                    "at": mark.isoformat(),
                    "stage": "lost",
                    "reason": f"no deal {LOST_AFTER_DAYS} days after first contact",
                }
            )
    return out


def load_history(data_dir: Path) -> pk.History:
    """The funnel as a History (lenient mode; what is set aside is in ``history.ingest``).

    Args:
        data_dir: the ``olist-marketing-funnel`` folder.
    """
    leads = read_csv(data_dir / FILES[0])
    deals = read_csv(data_dir / FILES[1])
    return pk.History.from_records(
        records(leads, deals), scheme=SCHEME, mode="lenient", assume_tz=TZ
    )


def main(data_dir: Path) -> dict[str, Any]:
    """Map the funnel, build the history in lenient mode, print and return key figures.

    Args:
        data_dir: the ``olist-marketing-funnel`` folder.
    """
    leads = read_csv(data_dir / FILES[0])
    deals = read_csv(data_dir / FILES[1])
    history = pk.History.from_records(
        records(leads, deals), scheme=SCHEME, mode="lenient", assume_tz=TZ
    )

    section("Ingest (lenient mode)")
    print(f"{len(leads)} leads, {len(deals)} deals -> {history!r}")
    reasons = print_ingest("olist", history)

    section(f"Leads by stage as of {AS_OF.date()} (PipelineByStage)")
    report = PipelineByStage().compute(history, as_of=AS_OF)
    print_table(
        [r for r in report.to_records() if r["level"] == "stage"],
        ["stage", "section", "count", "amount", "unpriced"],
    )
    pipeline = history.as_of(AS_OF)
    late = sum(1 for o in pipeline.values() if o.is_won and "lost" in {v.stage for v in o.path})
    weighted = "yes" if report.weighted_available else "none (the scheme has no weights)"
    print(f"  {len(pipeline)} leads (amount: 1 per lead, a seller); weighted figures: {weighted}")
    print(f"  {late} of the won leads were won after the {LOST_AFTER_DAYS}-day mark (reopened)")

    section("Win/loss by lead origin (WinLoss)")
    win_loss = WinLoss(by="source").compute(history, as_of=AS_OF)
    origins = sorted(win_loss.groups, key=lambda g: (-g.closed, g.group is None, g.group or ""))
    print_table(
        [
            {"origin": g.group or "(none)", **g.to_record()}
            for g in (*origins, win_loss.overall.model_copy(update={"group": "all"}))
        ],
        ["origin", "closed", "won", "lost", "win_rate"],
    )
    for reason in win_loss.loss_reason_records():
        print(f"  loss reason: {reason['reason']}: {reason['count']} ({reason['share']:.0%})")

    section("Lead-to-deal time (Velocity)")
    velocity = Velocity().compute(history, as_of=AS_OF)
    p90 = percentile(velocity.won_cycles, 0.9)
    print(
        f"  first contact -> won, days: median {velocity.won_cycle_median_days:.2f}, "
        f"mean {velocity.won_cycle_mean_days:.2f}, "
        f"P90 {p90:.2f} ({velocity.won} won leads)"
    )

    section("Funnel (FunnelConversion)")
    funnel = FunnelConversion().compute(history, as_of=AS_OF)
    print_table(funnel.to_records(), ["stage", "reached", "won", "lost_here", "to_won"])

    section(f"Lead requirement: leads needed to sign {TARGET_SELLERS} sellers (LeadRequirement)")
    requirement = LeadRequirement(target=TARGET_SELLERS).compute(history, as_of=AS_OF)
    print_table(
        requirement.summary_records(),
        ["target", "lead_to_win_rate", "average_won_amount", "deals_needed", "leads_needed"],
    )
    first_half = LeadRequirement(
        target=TARGET_SELLERS,
        window=(datetime(2017, 6, 1, tzinfo=TZ), datetime(2018, 1, 1, tzinfo=TZ)),
    ).compute(history, as_of=AS_OF)
    print(
        f"  learning only from leads first contacted in 2017: rate "
        f"{first_half.lead_to_win_rate:.4f}, leads needed {first_half.leads_needed}"
    )

    first, last = BACKTEST_AS_OF
    section(f"Backtest: each month {first:%Y-%m} .. {last:%Y-%m} forecast at its first day")
    bt = backtest(
        {
            "historical": HistoricalForecast(horizon=1, tz=TZ),
            "projection": ProjectionForecast(horizon=1, tz=TZ),
        },
        history,
        as_of_dates=(first, last, "month"),
        tz=TZ,
    )
    print_table(
        bt.summary(),
        ["forecaster", "points", "mae", "wape", "bias", "coverage", "ece", "deals_scored"],
    )
    by_month = backtest_months(bt)
    for month in by_month.values():
        month["rate_known"] = WinLoss().compute(history, as_of=month["as_of"]).overall.win_rate
    print_table(
        by_month.values(),
        ["month", "actual", "historical", "projection", "open", "rate_known"],
    )
    print(
        "  actual: sellers signed in the month; open: leads open at its first day (none scored"
        "\n  in November: the data ends before it does); rate_known: won / (won + lost) among"
        "\n  the leads closed by then (what a closed-deal rate would learn), against "
        f"{win_loss.overall.win_rate:.3f} in the end"
    )

    return {
        "leads": len(pipeline),
        "set_aside": reasons,
        "won": velocity.won,
        "lost": velocity.lost,
        "open": velocity.open,
        "late_wins": late,
        "lead_to_win_rate": requirement.lead_to_win_rate,
        "leads_needed": requirement.leads_needed,
        "won_cycle_median_days": velocity.won_cycle_median_days,
        "stage_counts": {c.stage: c.count for c in report.cells},
        "won_lost_by_source": {g.group: (g.won, g.lost) for g in win_loss.groups},
        "backtest_actual": {m: r["actual"] for m, r in by_month.items()},
        "backtest_rate_known": {m: r["rate_known"] for m, r in by_month.items()},
        "backtest_points": len(bt.points),
        "backtest": {a.forecaster: a for a in bt.accuracy},
    }


if __name__ == "__main__":
    main(data_dir_or_exit(FOLDER, FILES))
