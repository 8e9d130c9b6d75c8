"""Small hand-made histories shared by the funnel/velocity/lead/weak-area report tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pipelinekit import History, StageScheme

SCHEME = StageScheme.model_validate(
    {
        "name": "small",
        "stages": [
            {"key": "lead", "label": "Lead", "weight": "10"},
            {"key": "offer", "label": "Offer", "weight": "50"},
            {"key": "contract", "label": "Contract", "weight": "80"},
            {"key": "won", "label": "Won", "weight": "100", "outcome": "won"},
            {"key": "lost", "label": "Lost", "weight": "0", "outcome": "lost"},
        ],
    }
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def at(day: float) -> str:
    """The instant ``day`` days after 2024-01-01 (day 0), as an ISO string."""
    return (T0 + timedelta(days=day)).isoformat()


def opened(
    oid: str, day: float, stage: str = "lead", amount: str | None = None, currency: str = "EUR"
) -> dict[str, Any]:
    rec: dict[str, Any] = {"type": "opened", "opportunity_id": oid, "at": at(day), "stage": stage}
    if amount is not None:
        rec["amount"] = amount
        rec["currency"] = currency
    return rec


def moved(oid: str, day: float, stage: str) -> dict[str, Any]:
    return {"type": "stage_changed", "opportunity_id": oid, "at": at(day), "stage": stage}


# Five deals, days counted from 2024-01-01 (day 0):
#   d1: lead 0 -> offer 2 -> contract 5 -> won 10           amount 1000
#   d2: lead 1 -> contract 3 (skips offer) -> won 7         amount 3000
#   d3: lead 2 -> offer 4 -> lost 6                         amount 500
#   d4: lead 3 -> lost 4                                    amount 700
#   d5: lead 4 -> offer 5, still open                       amount 2000
FIVE = [
    opened("d1", 0, amount="1000"),
    opened("d2", 1, amount="3000"),
    opened("d3", 2, amount="500"),
    moved("d1", 2, "offer"),
    moved("d2", 3, "contract"),
    opened("d4", 3, amount="700"),
    moved("d3", 4, "offer"),
    moved("d4", 4, "lost"),
    opened("d5", 4, amount="2000"),
    moved("d1", 5, "contract"),
    moved("d5", 5, "offer"),
    moved("d3", 6, "lost"),
    moved("d2", 7, "won"),
    moved("d1", 10, "won"),
]


def five() -> History:
    return History.from_records(FIVE, scheme=SCHEME)


AS_OF = at(31)  # 2024-02-01
