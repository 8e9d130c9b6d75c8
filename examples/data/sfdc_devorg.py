"""Salesforce's own Developer-Edition sample opportunities, with the probabilities it computed.

Data: ``shared/data/sfdc-devorg-sample/`` - ``Opportunity.csv`` (36 opportunities: 31 stock
sample deals plus 5 added by the exporter without an Amount) and ``OpportunityHistory.csv``
(48 rows). Origin, licence and quirks: its ``SOURCE.txt``.

What it is good for: Salesforce itself filled in ``Probability`` (from the stage's default
probability) and ``ExpectedRevenue = Amount x Probability / 100`` on every row. This example
checks, row by row, that the ``salesforce`` preset's stage weights reproduce both, through the
library (each opportunity's ``probability`` and ``weighted_amount`` after replay).

Loading: :func:`pipelinekit.adapters.salesforce.to_records` (its docstring has the
mapping table): ``opened`` at ``Opportunity.CreatedDate`` (MM/DD/YY, ``date_order="mdy"``)
in the stage of the earliest OpportunityHistory row, with its Amount (empty for the 5 added
deals: none), CloseDate, Name, AccountId and LeadSource; a ``stage_changed`` per
OpportunityHistory row at its CreatedDate (``MM/DD/YY hh:mm AM``), event_id = its Id.
Probability and ExpectedRevenue are not imported (they are what this example checks); the
exporter's "..._Simulated" date columns are not Salesforce data. Dates carry no zone
(Salesforce exports in the user's zone, which the file does not name): the adapter reads
them as UTC. ``salesforce.contradictions`` finds no disagreement between StageName and
IsClosed/IsWon here.

What lenient mode sets aside: the history is degenerate (SOURCE.txt): almost every row has
the org-load timestamp, and seven deals were loaded as Closed Won and changed to Closed Lost
up to two weeks later. The preset does not allow reopening a closed deal, so those seven
Closed Won -> Closed Lost rows are set aside ("reopen") and the deals stay won, while
Opportunity.csv says Closed Lost. Salesforce does allow it; :data:`REOPENABLE` (the preset with
``reopen=True``) replays all 48 rows and ends every deal in its exported stage. Both are
shown; the reports use :data:`REOPENABLE`, so that they agree with Salesforce.

Sections: the ingest with both schemes, the probability check, the pipeline by stage at the
end of the history (``PipelineByStage``: count, amount and weighted amount per stage, next
to the export's own row count and ``ExpectedRevenue`` per ``StageName``), win/loss overall
and per ``LeadSource`` (``WinLoss``; the export has no loss reasons), the open count
(``Velocity``) and the funnel.

No backtest, and no velocity figures in days: every history row is dated at one of three
loading moments, not when anything was sold - 02/23/26 08:55 PM (the 31 stock deals, each
loaded directly in its stage, Closed Won included), 02/24/26 02:15-02:20 AM (the 5 added
deals, moved on from Prospecting within minutes) and 03/07/26 about 9 PM (the seven Closed
Won -> Closed Lost changes): about two weeks in all. The stock deals' ``CloseDate``
(02/03/24) is two years *before* their ``CreatedDate``, and the "..._Simulated" dates are
the exporter's inventions, not Salesforce data. A backtest needs closed deals before each
``as_of`` to learn from and real wins after it; here it would only measure the loading
script, so none is shown.

Run: ``python examples/data/sfdc_devorg.py``.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from _common import data_dir_or_exit, print_ingest, print_table, read_csv, section

import pipelinekit as pk
from pipelinekit.adapters import salesforce
from pipelinekit.reports.funnel import FunnelConversion
from pipelinekit.reports.pipeline_by_stage import PipelineByStage
from pipelinekit.reports.velocity import Velocity
from pipelinekit.reports.win_loss import WinLoss

FOLDER = "sfdc-devorg-sample"
FILES = ("Opportunity.csv", "OpportunityHistory.csv")

PRESET = pk.schemes.get("salesforce")
STAGE_KEYS = {stage.label: stage.key for stage in PRESET.stages}
"""Salesforce StageName (the preset's labels) -> preset key."""

REOPENABLE = pk.StageScheme.model_validate(
    {
        **PRESET.model_dump(mode="json"),
        "name": "salesforce-reopenable",
        "reopen": True,
        "description": "The Salesforce preset, but a closed deal may change stage again "
        "(e.g. Closed Won -> Closed Lost), as Salesforce allows.",
    }
)


def records(
    opportunities: list[dict[str, str]], history_rows: list[dict[str, str]]
) -> list[dict[str, Any]]:
    """The export as records, through the Salesforce adapter (see the module docstring)."""
    return salesforce.to_records(
        opportunities=opportunities, history=history_rows, scheme=PRESET, date_order="mdy"
    )


def main(data_dir: Path) -> dict[str, Any]:
    """Map the sample, check the preset's probabilities, print and return key figures.

    Args:
        data_dir: the ``sfdc-devorg-sample`` folder.
    """
    opportunities = read_csv(data_dir / "Opportunity.csv")
    history_rows = read_csv(data_dir / "OpportunityHistory.csv")
    recs = records(opportunities, history_rows)

    section("Ingest with the Salesforce preset (lenient mode)")
    preset_history = pk.History.from_records(recs, scheme=PRESET, mode="lenient")
    preset_reasons = print_ingest("preset 'salesforce'", preset_history)
    section("Ingest with the preset, reopening allowed (reported on below)")
    history = pk.History.from_records(recs, scheme=REOPENABLE, mode="lenient")
    reasons = print_ingest("'salesforce-reopenable'", history)
    assert history.end is not None
    as_of = history.end
    print(f"  {history!r}")

    pipeline = history.as_of(as_of)
    preset_pipeline = preset_history.as_of(as_of)
    section("Probability and ExpectedRevenue: Salesforce's figures vs the preset's weights")
    rows = []
    checked = probability_ok = expected_ok = stage_ok = preset_stage_ok = 0
    for opp in opportunities:
        o = pipeline[opp["Id"]]
        checked += 1
        stage_ok += o.stage == STAGE_KEYS[opp["StageName"]]
        preset_stage_ok += preset_pipeline[opp["Id"]].stage == STAGE_KEYS[opp["StageName"]]
        probability_ok += o.probability == Decimal(opp["Probability"])
        if opp["ExpectedRevenue"]:
            expected_ok += o.weighted_amount == Decimal(opp["ExpectedRevenue"])
        else:
            expected_ok += o.weighted_amount is None
    per_stage: dict[str, set[str]] = {}
    for row in [*opportunities, *history_rows]:
        per_stage.setdefault(row["StageName"], set()).add(row["Probability"])
    for stage in PRESET.stages:
        seen = sorted(per_stage.get(stage.label, set()))
        rows.append(
            {
                "StageName": stage.label,
                "Probability (Salesforce)": ", ".join(seen) or "(not in the sample)",
                "weight (preset)": stage.weight,
            }
        )
    print_table(rows, ["StageName", "Probability (Salesforce)", "weight (preset)"])
    print(f"  probability == Probability:           {probability_ok} of {checked} opportunities")
    print(f"  weighted_amount == ExpectedRevenue:    {expected_ok} of {checked}")
    print(f"  final stage == StageName (reopenable): {stage_ok} of {checked}")
    print(f"  final stage == StageName (preset):     {preset_stage_ok} of {checked}")

    section(f"Pipeline by stage as of {as_of.isoformat()} (PipelineByStage)")
    by_stage = PipelineByStage().compute(history, as_of=as_of)
    # Opportunity.csv's own figures per stage key: rows and ExpectedRevenue
    exported: dict[str | None, list[Any]] = {None: [0, Decimal(0)]}  # None: every open row
    for opp in opportunities:
        key = STAGE_KEYS[opp["StageName"]]
        for k in (key, None) if PRESET.stage(key).is_open else (key,):
            acc = exported.setdefault(k, [0, Decimal(0)])
            acc[0] += 1
            acc[1] += Decimal(opp["ExpectedRevenue"] or 0)
    table = [
        {
            **r,
            "stage": r["stage"] or r["label"],
            "StageName rows": exported.get(r["stage"], [0])[0],
            "ExpectedRevenue": exported.get(r["stage"], [0, Decimal(0)])[1],
        }
        for r in by_stage.to_records()
        if (r["level"] == "stage" and r["count"]) or r["label"] == "Total open"
    ]
    print_table(
        table,
        ["stage", "count", "unpriced", "amount", "weighted", "StageName rows", "ExpectedRevenue"],
    )
    open_total = by_stage.total("open")
    print(
        f"  open {open_total.amount:,}, weighted {open_total.weighted:,} "
        f"({open_total.unpriced} open deals without an amount)"
    )
    print("  StageName rows, ExpectedRevenue: Opportunity.csv's own figures, per StageName")

    section("Win/loss of every deal closed by the end (WinLoss)")
    win_loss = WinLoss().compute(history, as_of=as_of)
    print_table(
        [win_loss.overall.to_record()],
        ["won", "lost", "win_rate", "won_amount", "lost_amount", "unpriced"],
    )
    reasons_lost = ", ".join(f"{r.reason} {r.count}" for r in win_loss.loss_reasons)
    print(f"  loss reasons: {reasons_lost} (the export has no loss reason column)")
    by_source = WinLoss(by="source").compute(history, as_of=as_of)
    print("\n  per lead source (WinLoss by source; LeadSource)")
    print_table(
        [{"source": g.group, **g.to_record()} for g in by_source.groups],
        ["source", "won", "lost", "win_rate", "won_amount", "lost_amount", "unpriced"],
    )
    velocity = Velocity().compute(history, as_of=as_of)
    print(f"  open at the end: {velocity.open} (Velocity); no cycle lengths or time in stage:")
    print("  the history's timestamps are load times, not sales cycles")

    section("Funnel conversion (FunnelConversion)")
    funnel = FunnelConversion().compute(history, as_of=as_of)
    print_table(
        [r for r in funnel.to_records() if r["reached"]],
        ["stage", "reached", "won", "lost_here", "to_won"],
    )

    section("Backtest: none")
    print("  every timestamp is one of three org-loading moments (2026-02-23 .. 2026-03-07) and")
    print("  the stock deals' CloseDate (2024-02-03) is before they were created: no past to")
    print("  learn from and no future to check against (see the module docstring)")

    return {
        "opportunities": checked,
        "set_aside": reasons,
        "set_aside_by_preset": preset_reasons,
        "probability_matches": probability_ok,
        "expected_revenue_matches": expected_ok,
        "stage_matches": stage_ok,
        "stage_matches_preset": preset_stage_ok,
        "probabilities": {o["Id"]: pipeline[o["Id"]].probability for o in opportunities},
        "won": velocity.won,
        "lost": velocity.lost,
        "open": velocity.open,
        "open_weighted": pipeline.weighted_total(),
        "by_stage": {c.stage: (c.count, c.unpriced, c.amount, c.weighted) for c in by_stage.cells},
        "open_total": (open_total.count, open_total.amount, open_total.weighted),
        "won_amount": win_loss.overall.won_amount,
        "lost_amount": win_loss.overall.lost_amount,
        "loss_reasons": {r.reason: r.count for r in win_loss.loss_reasons},
        "win_loss_by_source": {g.group: (g.won, g.lost, g.won_amount) for g in by_source.groups},
    }


if __name__ == "__main__":
    main(data_dir_or_exit(FOLDER, FILES))
