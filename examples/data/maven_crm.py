"""Maven Analytics "CRM Sales Opportunities" (fictional B2B hardware seller, 2016-2017).

Data: ``shared/data/maven-crm/`` (``sales_pipeline.csv``: 8,800 opportunities;
``products.csv``: list prices). Origin, licence and quirks: its ``SOURCE.txt``.

Stage scheme: Maven's own four stages, "Prospecting > Engaging > Won / Lost" (its data
dictionary). The data set gives no probabilities, so the stages carry no weights (weighted
figures are not available; counts, amounts, conversion and velocity are).

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
                    (revenue, not the value at stake), so it is not used.
    product         "opened" product; its list price (products.csv sales_price) is the
                    opened amount - the value at stake while the deal is open. The
                    pipeline spells "GTX Pro" as "GTXPro"; we map it to the products row.
    sales_agent     "opened" owner
    account         "opened" account (empty for 1,425 rows: left out)

Dates are bare ISO dates without a time or zone: a bare date means the start of that day,
and ``assume_tz=UTC`` gives it a zone (the data says nothing about zones; whole days are all
that matter here). No currency is given anywhere, so amounts carry none.

Run: ``python examples/data/maven_crm.py`` (finds ``shared/data`` beside the checkout, or
set ``PIPELINEKIT_DATA``).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC
from decimal import Decimal
from pathlib import Path
from typing import Any

from _common import data_dir_or_exit, print_ingest, print_table, read_csv, section

import pipelinekit as pk
from pipelinekit.reports.funnel import FunnelConversion
from pipelinekit.reports.lead_requirement import LeadRequirement
from pipelinekit.reports.velocity import Velocity
from pipelinekit.reports.weak_areas import WeakAreas

FOLDER = "maven-crm"
FILES = ("sales_pipeline.csv", "products.csv")
AS_OF = "2018-01-01T00:00:00+00:00"  # the day after the last close date (2017-12-31)

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

    pipeline = history.as_of(AS_OF)
    section(f"Pipeline as of {AS_OF}")
    stages = Counter(o.stage for o in pipeline.values())
    print_table(
        [
            {
                "stage": s.key,
                "deals": stages[s.key],
                "amount": sum(
                    (o.amount or Decimal(0) for o in pipeline.values() if o.stage == s.key),
                    Decimal(0),
                ),
            }
            for s in SCHEME.stages
        ],
        ["stage", "deals", "amount"],
    )
    print(f"  open pipeline (list prices): {pipeline.total_amount():,}")

    section("Win/loss, sales cycle and velocity (Velocity)")
    velocity = Velocity().compute(history, as_of=AS_OF)
    print_table(velocity.summary_records(), ["open", "won", "lost", "win_rate"])
    print_table(
        velocity.summary_records(),
        ["won_cycle_median_days", "won_cycle_mean_days", "lost_cycle_median_days"],
    )
    print(f"  won revenue: {velocity.won_amount:,}  average won deal: ", end="")
    print(f"{velocity.average_won_amount:.2f}  pipeline velocity (per day): ", end="")
    print(f"{velocity.pipeline_velocity:.2f}")

    section("Win rate per agent (top 5 by won deals, Velocity on each agent's deals)")
    by_agent: dict[str, list[str]] = {}
    for o in pipeline.values():
        by_agent.setdefault(o.owner or "-", []).append(o.id)
    agent_rows = []
    for agent, ids in by_agent.items():
        v = Velocity().compute(history.for_opportunities(ids), as_of=AS_OF)
        agent_rows.append({"agent": agent, "won": v.won, "lost": v.lost, "win_rate": v.win_rate})
    agent_rows.sort(key=lambda r: (-r["won"], r["agent"]))
    print_table(agent_rows[:5], ["agent", "won", "lost", "win_rate"])

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
    }


if __name__ == "__main__":
    main(data_dir_or_exit(FOLDER, FILES))
