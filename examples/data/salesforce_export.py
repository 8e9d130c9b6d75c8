"""A real Salesforce export (Preppin' Data 2022 week 23): Opportunity + Opportunity History.

Data: ``shared/data/preppin-sf-opps/`` - ``Opportunity.csv`` (219 opportunities, 45 columns),
``Opportunity History.csv`` (584 stage changes: OppID, CreatedDate, StageName, SortOrder) and
the challenge's published answer ``Cleaned Salesforce Data.csv`` (a stage timeline per
opportunity). Origin, licence and quirks: its ``SOURCE.txt``.

Stage scheme: the Salesforce preset, ``schemes.get("salesforce")``. Every StageName in this
export is one of the preset's labels, mapped to its key by :data:`STAGE_KEYS`. A name that is
not in the preset would be passed on as it is (e.g. ``"Contract Sent"``) and lenient mode
would set that record aside as ``stage: unknown stage ...``: nothing is guessed.

Mapping::

    file / column                    becomes
    -------------------------------  ----------------------------------------------------
    Opportunity.Id                   opportunity_id
    Opportunity.CreatedDate          "opened" at that date, in the stage of the
                                     opportunity's earliest history row (the export has no
                                     creation stage of its own)
    Opportunity.Amount               "opened" amount (no currency column: amounts carry none)
    Opportunity.CloseDate            "opened" expected_close
    Opportunity.Name / OwnerId /     "opened" name / owner / account / source
      AccountId / LeadSource
    Opportunity History row          "stage_changed" at its CreatedDate to
                                     STAGE_KEYS[StageName]; rows of one opportunity and day
                                     would be ordered by SortOrder (none share a day here)
    not used                         Probability, ExpectedRevenue, IsClosed, IsWon,
                                     ForecastCategory and the StageName column of
                                     Opportunity.csv: they disagree with each other and with
                                     the history in this export (counted in the output), so
                                     probabilities come from the preset's stage weights

Dates are DD/MM/YYYY (UK) without a time or zone: parsed with ``datetime.strptime``, a bare
date is the start of that day, and ``assume_tz=UTC`` gives it a zone.

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

Run: ``python examples/data/salesforce_export.py``.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from _common import data_dir_or_exit, print_ingest, print_table, read_csv, section

import pipelinekit as pk
from pipelinekit.forecasts.weighted import WeightedForecast
from pipelinekit.reports.funnel import FunnelConversion
from pipelinekit.reports.velocity import Velocity

FOLDER = "preppin-sf-opps"
FILES = ("Opportunity.csv", "Opportunity History.csv")

PRESET = pk.schemes.get("salesforce")
STAGE_KEYS = {stage.label: stage.key for stage in PRESET.stages}
"""Salesforce StageName (the preset's labels, e.g. ``"Negotiation/Review"``) -> preset key."""

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


def day(text: str) -> str:
    """A DD/MM/YYYY date as ISO ``YYYY-MM-DD`` (empty stays empty)."""
    return datetime.strptime(text, "%d/%m/%Y").date().isoformat() if text else ""


def records(
    opportunities: list[dict[str, str]], history_rows: list[dict[str, str]]
) -> list[dict[str, Any]]:
    """Turn the two exported tables into pipelinekit records (see the module docstring)."""
    by_opp: dict[str, list[tuple[str, int, str]]] = {}
    for row in history_rows:
        entry = (day(row["CreatedDate"]), int(row["SortOrder"]), row["StageName"])
        by_opp.setdefault(row["OppID"], []).append(entry)
    out: list[dict[str, Any]] = []
    for opp in opportunities:
        oid = opp["Id"]
        changes = sorted(by_opp.get(oid, []))
        first_stage = changes[0][2] if changes else "Prospecting"
        out.append(
            {
                "type": "opened",
                "opportunity_id": oid,
                "at": day(opp["CreatedDate"]),
                "stage": STAGE_KEYS.get(first_stage, first_stage),
                "amount": opp["Amount"] or None,
                "expected_close": day(opp["CloseDate"]) or None,
                "name": opp["Name"] or None,
                "owner": opp["OwnerId"] or None,
                "account": opp["AccountId"] or None,
                "source": opp["LeadSource"] or None,
            }
        )
        out.extend(
            {
                "type": "stage_changed",
                "opportunity_id": oid,
                "at": at,
                "stage": STAGE_KEYS.get(name, name),
            }
            for at, _, name in changes
        )
    return out


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

    section("Ingest with the Salesforce preset (lenient mode; reported on below)")
    history = pk.History.from_records(recs, scheme=PRESET, mode="lenient", assume_tz=UTC)
    reasons = print_ingest("preset 'salesforce'", history)
    print(f"  {history!r}")

    section("Ingest with the preset in any order (for comparison)")
    any_order = pk.History.from_records(recs, scheme=ANY_ORDER, mode="lenient", assume_tz=UTC)
    any_order_reasons = print_ingest("'salesforce-any-order'", any_order)

    assert history.end is not None
    as_of = history.end
    pipeline = history.as_of(as_of)
    section(f"Stages at the end ({as_of.date()}): both ingests, and Opportunity.StageName")
    final = Counter(o.stage for o in pipeline.values())
    final_any = Counter(o.stage for o in any_order.as_of(as_of).values())
    exported = Counter(STAGE_KEYS[o["StageName"]] for o in opportunities)
    print_table(
        [
            {
                "stage": s.key,
                "preset": final[s.key],
                "any_order": final_any[s.key],
                "StageName": exported[s.key],
                "amount (preset)": sum(
                    (o.amount or Decimal(0) for o in pipeline.values() if o.stage == s.key),
                    Decimal(0),
                ),
            }
            for s in PRESET.stages
            if final[s.key] or final_any[s.key] or exported[s.key]
        ],
        ["stage", "preset", "any_order", "StageName", "amount (preset)"],
    )
    agree = sum(1 for o in opportunities if pipeline[o["Id"]].stage == STAGE_KEYS[o["StageName"]])
    print(f"  preset replay ends at Opportunity.StageName for {agree} of {len(opportunities)}")
    print(
        f"  open: {pipeline.total_amount():,} at stake, weighted (preset weights) "
        f"{pipeline.weighted_total():,}"
    )

    section("Win/loss, time in stage and velocity (Velocity)")
    velocity = Velocity().compute(history, as_of=as_of)
    print_table(velocity.summary_records(), ["open", "won", "lost", "win_rate"])
    print_table(
        [r for r in velocity.to_records() if r["stays"]],
        ["stage", "stays", "median_days", "mean_days", "p90_days"],
    )
    print(
        f"  won cycle median {velocity.won_cycle_median_days} days, "
        f"lost cycle median {velocity.lost_cycle_median_days} days"
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

    return {
        "opportunities": len(opportunities),
        "history_rows": len(history_rows),
        "set_aside": reasons,
        "set_aside_any_order": any_order_reasons,
        "final_stages": dict(final),
        "final_stages_any_order": dict(final_any),
        "agree_with_stage_name": agree,
        "won": velocity.won,
        "lost": velocity.lost,
        "open": velocity.open,
        "win_rate": velocity.win_rate,
        "probability_mismatches": prob_off,
    }


if __name__ == "__main__":
    main(data_dir_or_exit(FOLDER, FILES))
