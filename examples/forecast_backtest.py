"""Backtest three forecasters on a synthetic history whose stage weights are wrong.

The sales team's scheme says a deal in "proposal" is won half the time (weight 50) and one
in "negotiation" three times out of four (75). The history below is generated with other,
known rules: from each stage a deal moves on or is lost with fixed chances, so the TRUE
chance of winning from each stage is

    lead 0.5 x 0.6 x 0.4 x 0.55 = 0.066   (weight 10)
    qualified   0.6 x 0.4 x 0.55 = 0.132   (weight 25)
    proposal          0.4 x 0.55 = 0.22    (weight 50)
    negotiation             0.55 = 0.55    (weight 75)

and reps type a close date 30 days after opening, while deals take months. Three years of
deals; every month of the last two years is forecast with what was known at its start and
compared with what was then won. Run it: ``python examples/forecast_backtest.py``.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pipelinekit import History, StageScheme
from pipelinekit.forecasts.backtest import BacktestResult, backtest
from pipelinekit.forecasts.historical import HistoricalForecast
from pipelinekit.forecasts.markov import MarkovForecast
from pipelinekit.forecasts.weighted import WeightedForecast

SCHEME = StageScheme.model_validate(
    {
        "name": "example",
        "stages": [
            {"key": "lead", "label": "Lead", "weight": "10"},
            {"key": "qualified", "label": "Qualified", "weight": "25"},
            {"key": "proposal", "label": "Proposal", "weight": "50"},
            {"key": "negotiation", "label": "Negotiation", "weight": "75"},
            {"key": "won", "label": "Won", "weight": "100", "outcome": "won"},
            {"key": "lost", "label": "Lost", "weight": "0", "outcome": "lost"},
        ],
    }
)
ADVANCE = {"lead": 0.5, "qualified": 0.6, "proposal": 0.4, "negotiation": 0.55}
"""The true chance of moving on (to the next stage, or to won) from each stage."""
NEXT = {"lead": "qualified", "qualified": "proposal", "proposal": "negotiation",
        "negotiation": "won"}  # fmt: skip
MEAN_DAYS = {"lead": 12.0, "qualified": 18.0, "proposal": 21.0, "negotiation": 15.0}
START = datetime(2022, 1, 1, tzinfo=UTC)
DAYS = 3 * 365


def true_win_rates() -> dict[str, float]:
    """The chance of ending won from each open stage under the generating rules."""
    rates: dict[str, float] = {}
    p = 1.0
    for stage in reversed(list(ADVANCE)):
        p *= ADVANCE[stage]
        rates[stage] = p
    return dict(reversed(list(rates.items())))


def records(*, seed: int = 7, per_month: int = 22) -> list[dict[str, Any]]:
    """A seeded synthetic history: about ``per_month`` new deals a month for three years."""
    rng = random.Random(seed)
    end = START + timedelta(days=DAYS)
    out: list[dict[str, Any]] = []
    count = per_month * 36
    for n in range(count):
        oid = f"deal-{n + 1:04d}"
        at = START + timedelta(minutes=rng.randrange(DAYS * 24 * 60))
        amount = Decimal(rng.randrange(50, 500) * 100)
        out.append(
            {
                "type": "opened",
                "opportunity_id": oid,
                "at": at.isoformat(),
                "stage": "lead",
                "amount": str(amount),
                "currency": "EUR",
                "expected_close": (at + timedelta(days=30)).date().isoformat(),
                "owner": rng.choice(("ann", "bob", "chen")),
            }
        )
        stage = "lead"
        while stage in ADVANCE:
            at += timedelta(days=rng.expovariate(1 / MEAN_DAYS[stage]))
            if at >= end:
                break
            stage = NEXT[stage] if rng.random() < ADVANCE[stage] else "lost"
            out.append(
                {"type": "stage_changed", "opportunity_id": oid, "at": at.isoformat(),
                 "stage": stage}
            )  # fmt: skip
    out.sort(key=lambda r: r["at"])
    return out


def history(seed: int = 7) -> History:
    """The synthetic history as a :class:`~pipelinekit.History`."""
    return History.from_records(records(seed=seed), scheme=SCHEME)


def main(seed: int = 7, *, show: bool = True) -> BacktestResult:
    """Backtest weighted vs historical vs Markov monthly over the last two years."""
    h = history(seed)
    result = backtest(
        {
            "weighted": WeightedForecast(horizon=1),
            "historical": HistoricalForecast(horizon=1),
            "markov": MarkovForecast(horizon=1),
        },
        h,
        as_of_dates=("2023-01-01T00:00:00+00:00", "2024-12-01T00:00:00+00:00", "month"),
    )
    if show:
        print(
            f"{len(h.opportunity_ids)} deals, {len(h)} events, {h.start:%Y-%m-%d}..{h.end:%Y-%m-%d}"
        )
        print("true win rate by stage vs weight:")
        for stage, rate in true_win_rates().items():
            print(f"  {stage:<12} true {rate:.3f}   weight {SCHEME.stage(stage).weight}%")
        print()
        print(f"{'forecaster':<11} {'points':>6} {'MAE':>10} {'WAPE':>6} {'bias':>10} "
              f"{'Brier':>6} {'logloss':>7} {'scored':>6} {'ECE':>6}")  # fmt: skip
        for a in result.accuracy:
            print(
                f"{a.forecaster:<11} {a.points:>6} {a.mae:>10,.0f} {a.wape or 0:>6.3f} "
                f"{a.bias:>10,.0f} {a.brier or 0:>6.3f} {a.log_loss or 0:>7.3f} "
                f"{a.deals_scored:>6} {a.ece or 0:>6.3f}"
            )
        print()
        print("calibration (deals per bin: predicted -> observed win rate)")
        for name in ("weighted", "historical"):
            cells = [
                f"{b.low:.1f}-{b.high:.1f}: {b.mean_predicted:.2f}->{b.observed:.2f} (n={b.deals})"
                for b in result.calibration
                if b.forecaster == name and b.deals
            ]
            print(f"  {name}:")
            for cell in cells:
                print(f"    {cell}")
    return result


if __name__ == "__main__":
    main()
