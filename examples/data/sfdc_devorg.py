"""Salesforce's own Developer-Edition sample opportunities, with the probabilities it computed.

Data: ``shared/data/sfdc-devorg-sample/`` - ``Opportunity.csv`` (36 opportunities: 31 stock
sample deals plus 5 added by the exporter without an Amount) and ``OpportunityHistory.csv``
(48 rows). Origin, licence and quirks: its ``SOURCE.txt``.

What it is good for: Salesforce itself filled in ``Probability`` (from the stage's default
probability) and ``ExpectedRevenue = Amount x Probability / 100`` on every row. This example
checks, row by row, that the ``salesforce`` preset's stage weights reproduce both, through the
library (each opportunity's ``probability`` and ``weighted_amount`` after replay).

Mapping::

    file / column                    becomes
    -------------------------------  ----------------------------------------------------
    Opportunity.Id                   opportunity_id
    Opportunity.CreatedDate          "opened" at that date (MM/DD/YY), in the stage of the
                                     opportunity's earliest OpportunityHistory row
    Opportunity.Amount               "opened" amount (empty for the 5 added deals: none)
    Opportunity.CloseDate            "opened" expected_close
    Opportunity.Name / AccountId /   "opened" name / account / source
      LeadSource
    OpportunityHistory row           "stage_changed" at its CreatedDate (MM/DD/YY hh:mm AM/PM)
                                     to the preset key of StageName; event_id = its Id
    not imported                     Probability / ExpectedRevenue (they are what we check),
                                     the exporter's "..._Simulated" date columns

Dates carry no zone (Salesforce exports in the user's zone, which the file does not name):
parsed with ``datetime.strptime``, a bare date is the start of that day, and
``assume_tz=UTC`` gives them a zone.

What lenient mode sets aside: the history is degenerate (SOURCE.txt): almost every row has
the org-load timestamp, and seven deals were loaded as Closed Won and changed to Closed Lost
up to two weeks later. The preset does not allow reopening a closed deal, so those seven
Closed Won -> Closed Lost rows are set aside ("reopen") and the deals stay won, while
Opportunity.csv says Closed Lost. Salesforce does allow it; :data:`REOPENABLE` (the preset with
``reopen=True``) replays all 48 rows and ends every deal in its exported stage. Both are
shown; the reports use :data:`REOPENABLE`, so that they agree with Salesforce.

Run: ``python examples/data/sfdc_devorg.py``.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from _common import data_dir_or_exit, print_ingest, print_table, read_csv, section

import pipelinekit as pk
from pipelinekit.reports.funnel import FunnelConversion
from pipelinekit.reports.velocity import Velocity

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


def day(text: str) -> str:
    """An MM/DD/YY date as ISO ``YYYY-MM-DD`` (empty stays empty)."""
    return datetime.strptime(text, "%m/%d/%y").date().isoformat() if text else ""


def moment(text: str) -> str:
    """An ``MM/DD/YY hh:mm AM`` timestamp as a naive ISO datetime."""
    return datetime.strptime(text, "%m/%d/%y %I:%M %p").isoformat()


def records(
    opportunities: list[dict[str, str]], history_rows: list[dict[str, str]]
) -> list[dict[str, Any]]:
    """Turn the two exported tables into pipelinekit records (see the module docstring)."""
    by_opp: dict[str, list[tuple[str, str, str]]] = {}
    for row in history_rows:
        entry = (moment(row["CreatedDate"]), row["Id"], row["StageName"])
        by_opp.setdefault(row["OpportunityId"], []).append(entry)
    out: list[dict[str, Any]] = []
    for opp in opportunities:
        oid = opp["Id"]
        changes = sorted(by_opp.get(oid, []))
        first_stage = changes[0][2] if changes else opp["StageName"]
        out.append(
            {
                "type": "opened",
                "opportunity_id": oid,
                "at": day(opp["CreatedDate"]),
                "stage": STAGE_KEYS.get(first_stage, first_stage),
                "amount": opp["Amount"] or None,
                "expected_close": day(opp["CloseDate"]) or None,
                "name": opp["Name"] or None,
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
                "event_id": event_id,
            }
            for at, event_id, name in changes
        )
    return out


def main(data_dir: Path) -> dict[str, Any]:
    """Map the sample, check the preset's probabilities, print and return key figures.

    Args:
        data_dir: the ``sfdc-devorg-sample`` folder.
    """
    opportunities = read_csv(data_dir / "Opportunity.csv")
    history_rows = read_csv(data_dir / "OpportunityHistory.csv")
    recs = records(opportunities, history_rows)

    section("Ingest with the Salesforce preset (lenient mode)")
    preset_history = pk.History.from_records(recs, scheme=PRESET, mode="lenient", assume_tz=UTC)
    preset_reasons = print_ingest("preset 'salesforce'", preset_history)
    section("Ingest with the preset, reopening allowed (reported on below)")
    history = pk.History.from_records(recs, scheme=REOPENABLE, mode="lenient", assume_tz=UTC)
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

    section(f"Pipeline as of {as_of.isoformat()}")
    stages = Counter(o.stage for o in pipeline.values())
    print_table(
        [{"stage": s.key, "deals": stages[s.key]} for s in PRESET.stages if stages[s.key]],
        ["stage", "deals"],
    )
    print(f"  open {pipeline.total_amount():,}, weighted {pipeline.weighted_total():,}")

    section("Win/loss (Velocity; the history's timestamps are load times, not sales cycles)")
    velocity = Velocity().compute(history, as_of=as_of)
    print_table(velocity.summary_records(), ["open", "won", "lost", "win_rate"])

    section("Funnel conversion (FunnelConversion)")
    funnel = FunnelConversion().compute(history, as_of=as_of)
    print_table(
        [r for r in funnel.to_records() if r["reached"]],
        ["stage", "reached", "won", "lost_here", "to_won"],
    )

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
    }


if __name__ == "__main__":
    main(data_dir_or_exit(FOLDER, FILES))
