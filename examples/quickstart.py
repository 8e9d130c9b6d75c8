"""Quickstart: a stage scheme, a small history, each opportunity's state, the weighted total.

Run it with ``make demo``.
"""

from __future__ import annotations

import pipelinekit as pk

# 1. A stage scheme is data: the stages in funnel order, each with its weight (the percentage
#    of the amount counted in a weighted forecast) and, for closed stages, an outcome.
scheme = pk.StageScheme.model_validate(
    {
        "name": "our-sales",
        "stages": [
            {"key": "lead", "label": "Lead", "weight": "10"},
            {"key": "needs", "label": "Needs analysis", "weight": "25"},
            {"key": "offer", "label": "Offer", "weight": "50"},
            {"key": "negotiation", "label": "Negotiation", "weight": "75"},
            {"key": "won", "label": "Won", "weight": "100", "outcome": "won"},
            {"key": "lost", "label": "Lost", "weight": "0", "outcome": "lost"},
        ],
    }
)

# 2. The history: plain records, as they come from a CRM export, a database or JSON.
records = [
    {
        "type": "opened",
        "opportunity_id": "acme-1",
        "at": "2024-01-08T09:00:00+00:00",
        "stage": "lead",
        "amount": "12000",
        "currency": "EUR",
        "owner": "ann",
        "account": "acme",
        "expected_close": "2024-03-29",
    },
    {
        "type": "opened",
        "opportunity_id": "globex-1",
        "at": "2024-01-15T14:30:00+00:00",
        "stage": "needs",
        "amount": "40000",
        "currency": "EUR",
        "owner": "bob",
        "account": "globex",
        "expected_close": "2024-04-30",
    },
    {
        "type": "opened",
        "opportunity_id": "initech-1",
        "at": "2024-02-01T10:00:00+00:00",
        "stage": "lead",
        "amount": "8000",
        "currency": "EUR",
        "owner": "ann",
        "account": "initech",
        "expected_close": "2024-02-28",
    },
    {
        "type": "stage_changed",
        "opportunity_id": "acme-1",
        "at": "2024-02-05T11:00:00+00:00",
        "stage": "offer",
    },
    {
        "type": "stage_changed",
        "opportunity_id": "globex-1",
        "at": "2024-02-20T16:00:00+00:00",
        "stage": "negotiation",
    },
    {
        "type": "probability_set",
        "opportunity_id": "globex-1",
        "at": "2024-02-21T09:00:00+00:00",
        "probability": "60",
    },
    {
        "type": "stage_changed",
        "opportunity_id": "initech-1",
        "at": "2024-02-26T12:00:00+00:00",
        "stage": "lost",
        "reason": "went with a competitor",
    },
    {
        "type": "next_action_scheduled",
        "opportunity_id": "acme-1",
        "at": "2024-02-27T08:00:00+00:00",
        "due": "2024-03-04",
        "note": "call about the offer",
    },
]
history = pk.History.from_records(records, scheme=scheme)

# 3. The pipeline as of an instant (always passed in: pipelinekit never reads the clock).
pipeline = history.as_of("2024-03-01T00:00:00+00:00")

print(f"{'opportunity':<11} {'stage':<12} {'amount':>9} {'prob.':>6} {'weighted':>9}  owner")
for opp in pipeline.values():
    probability = f"{opp.probability}%" if opp.probability is not None else "-"
    print(
        f"{opp.id:<11} {opp.stage:<12} {opp.amount:>9} {probability:>6} "
        f"{opp.weighted_amount:>9}  {opp.owner}"
    )
print(f"open pipeline: {pipeline.total_amount()} EUR in {len(pipeline.open())} deals")
print(f"weighted total: {pipeline.weighted_total()} EUR")
