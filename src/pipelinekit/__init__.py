"""pipelinekit: sales-pipeline forecasting as pure, typed domain code.

Stage schemes with weights, opportunity state machines and stage-history events feed
report and forecast calculators. No I/O, no clock reads, no global state.

``pipelinekit.testing`` (hypothesis strategies and checks for your own schemes and
calculators) needs the ``testing`` extra and is imported explicitly.

Example:
    >>> import pipelinekit as pk
    >>> scheme = pk.schemes.get("salesforce")
    >>> history = pk.History.from_records([
    ...     {"type": "opened", "opportunity_id": "o-1", "at": "2024-01-05T10:00:00+00:00",
    ...      "stage": "needs-analysis", "amount": "12000", "currency": "USD"},
    ... ], scheme=scheme)
    >>> history.as_of("2024-02-01T00:00:00+00:00")["o-1"].weighted_amount
    Decimal('2400')
"""

from pipelinekit import calculators, categories, demo, forecasts, periods, reports, results, schemes
from pipelinekit.calculators import Calculator, Mergeable, compute_partitioned, partition_of
from pipelinekit.categories import CategoryMap, ForecastCategory
from pipelinekit.errors import (
    ArgumentError,
    CurrencyError,
    DuplicateEventError,
    PipelineError,
    RecordError,
    SchemeError,
    TransitionError,
)
from pipelinekit.events import (
    ActivityLogged,
    AmountChanged,
    CloseDateChanged,
    Event,
    NextActionScheduled,
    Opened,
    OwnerChanged,
    ProbabilitySet,
    StageChanged,
    event_from_record,
)
from pipelinekit.history import (
    Duplicate,
    History,
    IngestReport,
    Pipeline,
    Rejection,
    UnknownOpportunityError,
)
from pipelinekit.money import FxRates, Rate, ReportingCurrency
from pipelinekit.opportunity import (
    Activity,
    NextAction,
    Opportunity,
    StageVisit,
    apply,
    reached_stages,
)
from pipelinekit.periods import Period, PeriodKind
from pipelinekit.results import Result
from pipelinekit.stages import Outcome, Stage, StageScheme, TransitionPolicy

__version__ = "0.1.0.dev0"

__all__ = [
    "Activity",
    "ActivityLogged",
    "AmountChanged",
    "ArgumentError",
    "Calculator",
    "CategoryMap",
    "CloseDateChanged",
    "CurrencyError",
    "Duplicate",
    "DuplicateEventError",
    "Event",
    "ForecastCategory",
    "FxRates",
    "History",
    "IngestReport",
    "Mergeable",
    "NextAction",
    "NextActionScheduled",
    "Opened",
    "Opportunity",
    "Outcome",
    "OwnerChanged",
    "Period",
    "PeriodKind",
    "Pipeline",
    "PipelineError",
    "ProbabilitySet",
    "Rate",
    "RecordError",
    "Rejection",
    "ReportingCurrency",
    "Result",
    "SchemeError",
    "Stage",
    "StageChanged",
    "StageScheme",
    "StageVisit",
    "TransitionError",
    "TransitionPolicy",
    "UnknownOpportunityError",
    "__version__",
    "apply",
    "calculators",
    "categories",
    "compute_partitioned",
    "demo",
    "event_from_record",
    "forecasts",
    "partition_of",
    "periods",
    "reached_stages",
    "reports",
    "results",
    "schemes",
]
