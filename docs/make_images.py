"""Render the pictures of ``pipelinekit.plot`` into ``docs/img/`` (run by hand, PNGs committed).

    .venv/bin/python docs/make_images.py

Every picture is drawn from ``demo.demo_history(opportunities=60, seed=42)`` as of
2024-09-30 (the calibration diagram from ``examples/forecast_backtest.py``), so the same
code gives the same images.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pipelinekit import demo, plot, schemes
from pipelinekit.forecasts.distribution import OutcomeDistribution
from pipelinekit.reports.movement import PipelineMovement
from pipelinekit.reports.pipeline_by_stage import PipelineByStage
from pipelinekit.reports.velocity import Velocity

OUT = Path(__file__).resolve().parent / "img"
AS_OF = "2024-09-30T00:00:00Z"
# Pillow writes no timestamp; dropping the version keeps the PNGs identical across upgrades.
METADATA = {"Software": None}


def _example_backtest() -> object:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
    import forecast_backtest

    return forecast_backtest.main(show=False)


def main() -> None:
    """Draw every picture and write it as a PNG at 100 dpi."""
    OUT.mkdir(exist_ok=True)
    history = demo.demo_history(opportunities=60, seed=42)
    unweighted = demo.demo_history(
        scheme=schemes.get("polish-sales-cycle"), opportunities=60, seed=42
    )
    figures = {
        "funnel.png": plot.funnel(PipelineByStage().compute(history, as_of=AS_OF)),
        "funnel-no-weights.png": plot.funnel(
            PipelineByStage().compute(unweighted, as_of=AS_OF), weighted=False
        ),
        "forecast-fan.png": plot.forecast_fan(
            OutcomeDistribution(horizon=6).compute(history, as_of=AS_OF)
        ),
        "movement-waterfall.png": plot.movement_waterfall(
            PipelineMovement(
                start="2024-07-01T00:00:00Z", period=("quarter", "2024-10-01")
            ).compute(history, as_of=AS_OF)
        ),
        "time-in-stage.png": plot.time_in_stage(Velocity().compute(history, as_of=AS_OF)),
        # the backtest of examples/forecast_backtest.py: stage weights that are wrong
        "calibration.png": plot.calibration(_example_backtest()),
    }
    for name, figure in figures.items():
        figure.savefig(OUT / name, dpi=100, metadata=METADATA)
        print(OUT / name)


if __name__ == "__main__":
    main()
