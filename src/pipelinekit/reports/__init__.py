"""Descriptive calculators: what the pipeline looks like and how it moved.

Every report is a calculator (``compute(history, *, as_of)``) that sees only
``history.until(as_of)`` and returns a frozen :class:`~pipelinekit.results.Result`.
"""

from pipelinekit.reports.activity import ActivityReport, ActivityReportResult, ActivityRow
from pipelinekit.reports.funnel import (
    FunnelConversion,
    FunnelConversionResult,
    FunnelStage,
    StageMovement,
)
from pipelinekit.reports.lead_requirement import (
    LeadRequirement,
    LeadRequirementResult,
    StageRequirement,
)
from pipelinekit.reports.movement import (
    MovementKind,
    MovementResult,
    MovementRow,
    PipelineMovement,
    SlippageRow,
)
from pipelinekit.reports.pipeline_by_stage import (
    PipelineByStage,
    PipelineByStageResult,
    StageCell,
    StageRow,
)
from pipelinekit.reports.quota import Quota, QuotaAttainment, QuotaAttainmentResult, QuotaRow
from pipelinekit.reports.stalled import StalledDeal, StalledDeals, StalledDealsResult
from pipelinekit.reports.velocity import StageProperties, StageTime, Velocity, VelocityResult
from pipelinekit.reports.weak_areas import StageBalance, WeakAreas, WeakAreasResult
from pipelinekit.reports.win_loss import LossReason, WinLoss, WinLossResult, WinLossRow

__all__ = [
    "ActivityReport",
    "ActivityReportResult",
    "ActivityRow",
    "FunnelConversion",
    "FunnelConversionResult",
    "FunnelStage",
    "LeadRequirement",
    "LeadRequirementResult",
    "LossReason",
    "MovementKind",
    "MovementResult",
    "MovementRow",
    "PipelineByStage",
    "PipelineByStageResult",
    "PipelineMovement",
    "Quota",
    "QuotaAttainment",
    "QuotaAttainmentResult",
    "QuotaRow",
    "SlippageRow",
    "StageBalance",
    "StageCell",
    "StageMovement",
    "StageProperties",
    "StageRequirement",
    "StageRow",
    "StageTime",
    "StalledDeal",
    "StalledDeals",
    "StalledDealsResult",
    "Velocity",
    "VelocityResult",
    "WeakAreas",
    "WeakAreasResult",
    "WinLoss",
    "WinLossResult",
    "WinLossRow",
]
