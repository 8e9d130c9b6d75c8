"""Descriptive calculators: what the pipeline looks like and how it moved.

Every report is a calculator (``compute(history, *, as_of)``) that sees only
``history.until(as_of)`` and returns a frozen :class:`~pipelinekit.results.Result`.
"""

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
from pipelinekit.reports.quota import Quota, QuotaAttainment, QuotaAttainmentResult, QuotaRow
from pipelinekit.reports.velocity import StageProperties, StageTime, Velocity, VelocityResult
from pipelinekit.reports.weak_areas import StageBalance, WeakAreas, WeakAreasResult

__all__ = [
    "FunnelConversion",
    "FunnelConversionResult",
    "FunnelStage",
    "LeadRequirement",
    "LeadRequirementResult",
    "MovementKind",
    "MovementResult",
    "MovementRow",
    "PipelineMovement",
    "Quota",
    "QuotaAttainment",
    "QuotaAttainmentResult",
    "QuotaRow",
    "SlippageRow",
    "StageBalance",
    "StageMovement",
    "StageProperties",
    "StageRequirement",
    "StageTime",
    "Velocity",
    "VelocityResult",
    "WeakAreas",
    "WeakAreasResult",
]
