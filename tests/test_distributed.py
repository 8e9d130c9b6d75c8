"""compute_on_dask on a real multi-process local Dask cluster equals the in-process reference.

One cluster (2 worker processes, 1 thread each) is shared by the module. The history has
2000 opportunities (about 13 500 records) in 8 partitions of opportunities, fed both as a
6-partition ``dask.bag`` (so the shuffle runs on the workers) and as a plain list (split on
the client).
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
import dask.bag as db  # noqa: E402

from pipelinekit import History, demo, schemes  # noqa: E402
from pipelinekit.calculators import compute_partitioned, partition_of  # noqa: E402
from pipelinekit.distributed import (  # noqa: E402
    compute_in_process,
    compute_on_dask,
    merge_ingest,
)
from pipelinekit.errors import ArgumentError, DuplicateEventError, RecordError  # noqa: E402
from pipelinekit.forecasts.distribution import (  # noqa: E402
    MonteCarloForecast,
    OutcomeDistribution,
    SimulatedForecast,
)
from pipelinekit.forecasts.historical import HistoricalForecast  # noqa: E402
from pipelinekit.forecasts.markov import MarkovForecast  # noqa: E402
from pipelinekit.forecasts.weighted import WeightedForecast  # noqa: E402
from pipelinekit.history import IngestReport  # noqa: E402
from pipelinekit.reports.activity import ActivityReport  # noqa: E402
from pipelinekit.reports.funnel import FunnelConversion  # noqa: E402
from pipelinekit.reports.lead_requirement import LeadRequirement  # noqa: E402
from pipelinekit.reports.movement import PipelineMovement  # noqa: E402
from pipelinekit.reports.pipeline_by_stage import PipelineByStage  # noqa: E402
from pipelinekit.reports.quota import QuotaAttainment  # noqa: E402
from pipelinekit.reports.stalled import StalledDeals  # noqa: E402
from pipelinekit.reports.velocity import Velocity  # noqa: E402
from pipelinekit.reports.weak_areas import WeakAreas  # noqa: E402
from pipelinekit.reports.win_loss import WinLoss  # noqa: E402

SCHEME = schemes.get("salesforce")
AS_OF = "2024-09-30T00:00:00+00:00"
PARTITIONS = 8
RECORDS = demo.demo_records(opportunities=2000, seed=11)

CALCULATORS: dict[str, Any] = {
    "funnel": FunnelConversion(),
    "funnel-in-order": FunnelConversion(mode="in_order"),
    "velocity": Velocity(include_open_stays=True),
    "lead-requirement": LeadRequirement(target=2_000_000),
    "weak-areas": WeakAreas(),
    "outcome-distribution": OutcomeDistribution(horizon=2, exact_limit=0),
    "monte-carlo": MonteCarloForecast(trials=500, seed=3, shock=0.2),
    "pipeline-movement": PipelineMovement(
        start="2024-07-01T00:00:00Z", period=("quarter", "2024-07-01")
    ),
    "pipeline-by-stage": PipelineByStage(group_by="owner"),
    "win-loss": WinLoss(by="owner"),
    "stalled-deals": StalledDeals(max_days_in_stage=30, idle_days=14),
    "activity": ActivityReport(window=("2024-07-01T00:00:00Z", "2024-10-01T00:00:00Z")),
    "quota-attainment": QuotaAttainment(
        quotas={"ann": 900_000, "bob": 800_000}, teams={"all": ("ann", "bob", "chen")}
    ),
}


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    with cluster, distributed.Client(cluster) as c:
        yield c
    assert multiprocessing.active_children() == []  # the worker processes are gone


@pytest.fixture(scope="module")
def bag() -> Any:
    return db.from_sequence(RECORDS, npartitions=6)


@pytest.fixture(scope="module")
def whole() -> History:
    """All of RECORDS in one History, built once."""
    return History.from_records(RECORDS, scheme=SCHEME)


@pytest.fixture(scope="module")
def parts(whole: History) -> tuple[History, ...]:
    """What compute_in_process(..., partitions=8) computes on."""
    return whole.partition(PARTITIONS)


def test_the_history_spans_every_partition(parts: tuple[History, ...]) -> None:
    assert len(RECORDS) > 10_000
    assert all(len(part.opportunity_ids) > 150 for part in parts)


@pytest.mark.parametrize("name", sorted(CALCULATORS))
def test_dask_equals_the_in_process_reference(
    name: str, client: Any, bag: Any, parts: tuple[History, ...]
) -> None:
    calculator = CALCULATORS[name]
    reference = compute_partitioned(calculator, parts, as_of=AS_OF)
    result = compute_on_dask(
        calculator, bag, scheme=SCHEME, as_of=AS_OF, partitions=PARTITIONS, client=client
    )
    assert result == reference
    assert result.to_records() == reference.to_records()  # Decimals equal, not just close


def test_a_plain_list_is_split_on_the_client_with_the_same_answer(client: Any) -> None:
    calculator = Velocity(include_open_stays=True)
    reference = compute_in_process(
        calculator, RECORDS, scheme=SCHEME, as_of=AS_OF, partitions=PARTITIONS
    )
    result = compute_on_dask(
        calculator, RECORDS, scheme=SCHEME, as_of=AS_OF, partitions=PARTITIONS, client=client
    )
    assert result == reference


def test_sums_are_exact_decimals(client: Any, bag: Any, whole: History) -> None:
    calculator = LeadRequirement(target=2_000_000)
    unpartitioned = calculator.compute(whole, as_of=AS_OF)
    result = compute_on_dask(
        calculator, bag, scheme=SCHEME, as_of=AS_OF, partitions=PARTITIONS, client=client
    )
    assert isinstance(result.won_amount, Decimal)
    assert result.won_amount == unpartitioned.won_amount > 0
    assert result == unpartitioned


def _canonical(f: SimulatedForecast) -> SimulatedForecast:
    """The forecast with its per-trial totals in row order."""
    order = {(r.bucket, r.group): i for i, r in enumerate(f.rows)}
    totals = tuple(sorted(f.totals, key=lambda t: order[(t.bucket, t.group)]))
    return f.model_copy(update={"totals": totals})


def test_monte_carlo_streams_do_not_depend_on_the_partitioning(
    client: Any, bag: Any, whole: History
) -> None:
    """Deals draw from streams keyed by (seed, opportunity id), period shocks by (seed,
    bucket): so 3 or 8 partitions, on Dask or not, simulate exactly the same trials."""
    mc = MonteCarloForecast(trials=500, seed=3, shock=0.2)
    unpartitioned = mc.compute(whole, as_of=AS_OF)
    for n in (3, PARTITIONS):
        result = compute_on_dask(mc, bag, scheme=SCHEME, as_of=AS_OF, partitions=n, client=client)
        assert _canonical(result) == _canonical(unpartitioned)


def test_monte_carlo_on_dask_equals_the_unpartitioned_forecast(
    client: Any, bag: Any, whole: History
) -> None:
    mc = MonteCarloForecast(trials=500, seed=3, shock=0.2)
    unpartitioned = mc.compute(whole, as_of=AS_OF)
    assert compute_on_dask(mc, bag, scheme=SCHEME, as_of=AS_OF, client=client) == unpartitioned


def test_weighted_forecast_sums_are_exact(
    client: Any, bag: Any, parts: tuple[History, ...]
) -> None:
    wf = WeightedForecast(horizon=3)
    reference = compute_partitioned(wf, parts, as_of=AS_OF)
    result = compute_on_dask(
        wf, bag, scheme=SCHEME, as_of=AS_OF, partitions=PARTITIONS, client=client
    )
    assert result.deals == reference.deals
    for got, want in zip(result.rows, reference.rows, strict=True):
        assert got.model_copy(update={"std": None}) == want.model_copy(update={"std": None})
        assert got.std is not None and want.std is not None
        assert abs(got.std - want.std) < Decimal("0.01")


def test_weighted_forecast_on_dask_equals_the_reference_exactly(
    client: Any, bag: Any, parts: tuple[History, ...]
) -> None:
    wf = WeightedForecast(horizon=3)
    reference = compute_partitioned(wf, parts, as_of=AS_OF)
    result = compute_on_dask(
        wf, bag, scheme=SCHEME, as_of=AS_OF, partitions=PARTITIONS, client=client
    )
    assert result == reference


LEARNED_FORECASTERS: dict[str, Any] = {
    "historical": lambda **kw: HistoricalForecast(horizon=3, segment_by="owner", **kw),
    "markov": lambda **kw: MarkovForecast(horizon=3, **kw),
}


@pytest.mark.parametrize("name", sorted(LEARNED_FORECASTERS))
def test_learned_forecasters_in_two_passes_on_dask_equal_the_unpartitioned_forecast(
    name: str, client: Any, bag: Any, whole: History
) -> None:
    make = LEARNED_FORECASTERS[name]
    args: dict[str, Any] = {"scheme": SCHEME, "as_of": AS_OF, "partitions": PARTITIONS}
    # pass 1: learn per partition on the workers and merge; pass 2: forecast each
    # partition on the workers with the merged tables and merge the forecasts
    learned = compute_on_dask(make().learner(), bag, client=client, **args)
    result = compute_on_dask(make(learned=learned), bag, client=client, **args)
    unpartitioned = make().compute(whole, as_of=AS_OF)
    assert result == unpartitioned
    assert result.to_records() == unpartitioned.to_records()


# -- lenient accounting -----------------------------------------------------------------------


def _dirty_records() -> list[dict[str, Any]]:
    """Demo records with every kind of bad record mixed in at known places."""
    records = [dict(r, event_id=f"e-{i}") for i, r in enumerate(RECORDS)]
    records[5] = {**records[5], "at": "yesterday"}  # malformed: rejected
    records.insert(100, dict(records[50]))  # exact duplicate of record 50
    records.insert(2000, dict(records[1500]))  # another one, far away
    records.insert(3000, {**records[7], "actor": "mallory"})  # e-7 again, other content
    records.append({"type": "stage_changed", "opportunity_id": "ghost", "at": AS_OF})
    records.append({"opportunity_id": "opp-0001", "type": "teleported", "at": AS_OF})
    records.append("not a record")  # type: ignore[arg-type]
    return records


def test_lenient_accounting_adds_up_and_matches_the_reference(client: Any) -> None:
    records = _dirty_records()
    calculator = FunnelConversion()
    ref, ref_ingest = compute_in_process(
        calculator, records, scheme=SCHEME, as_of=AS_OF, mode="lenient"
    )
    lenient_bag = db.from_sequence(records, npartitions=5)
    for source in (lenient_bag, records):
        result, ingest = compute_on_dask(
            calculator,
            source,
            scheme=SCHEME,
            as_of=AS_OF,
            partitions=PARTITIONS,
            mode="lenient",
            client=client,
        )
        assert result == ref
        assert ingest.total == len(records)
        assert ingest.accounted
        assert (ingest.applied, len(ingest.duplicates), len(ingest.rejected)) == (
            ref_ingest.applied,
            len(ref_ingest.duplicates),
            len(ref_ingest.rejected),
        )
        # global input indices, first indices of duplicates, records and reasons all agree
        assert ingest.to_records() == ref_ingest.to_records()
        assert [d.first_index for d in ingest.duplicates] == [
            d.first_index for d in ref_ingest.duplicates
        ]
        assert [r.record for r in ingest.rejected] == [r.record for r in ref_ingest.rejected]
        assert [r.error.index for r in ingest.rejected] == [r.index for r in ingest.rejected]
    assert len(ref_ingest.duplicates) == 2
    assert len(ref_ingest.rejected) >= 4
    assert {5, len(records) - 1} <= {r.index for r in ref_ingest.rejected}


def test_an_event_id_reused_across_opportunities_is_only_seen_within_a_partition(
    client: Any,
) -> None:
    """The documented limit: de-duplication is per partition of opportunities."""
    records = [dict(r, event_id=f"e-{i}") for i, r in enumerate(RECORDS)]
    first = records[0]
    other = next(
        r
        for r in records
        if r["type"] == "opened"
        and partition_of(r["opportunity_id"], 2) != partition_of(first["opportunity_id"], 2)
    )
    records[records.index(other)] = {**other, "event_id": first["event_id"]}
    _, ref_ingest = compute_in_process(
        FunnelConversion(), records, scheme=SCHEME, as_of=AS_OF, mode="lenient"
    )
    _, ingest = compute_on_dask(
        FunnelConversion(),
        records,
        scheme=SCHEME,
        as_of=AS_OF,
        partitions=2,
        mode="lenient",
        client=client,
    )
    assert isinstance(ref_ingest.rejected[0].error, DuplicateEventError)
    assert ingest.rejected == ()  # the two opportunities are in different partitions


def test_strict_mode_raises_with_the_global_index(client: Any) -> None:
    records = list(RECORDS)
    records[4321] = {**records[4321], "amount": "-5"}
    with pytest.raises(RecordError) as expected:
        compute_in_process(FunnelConversion(), records, scheme=SCHEME, as_of=AS_OF)
    for source in (db.from_sequence(records, npartitions=4), records):
        with pytest.raises(RecordError) as got:
            compute_on_dask(
                FunnelConversion(), source, scheme=SCHEME, as_of=AS_OF, partitions=3, client=client
            )
        assert got.value.index == expected.value.index == 4321
        assert got.value.field == expected.value.field


def test_merge_ingest_adds_counts_and_orders_by_index() -> None:
    a = IngestReport(total=2, applied=2)
    b = IngestReport(total=1, applied=0)
    merged = merge_ingest(a, b)
    assert (merged.total, merged.applied, merged.accounted) == (3, 2, False)


# -- arguments and packaging ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"partitions": 0}, "partitions"),
        ({"partitions": True}, "partitions"),
        ({"mode": "sloppy"}, "mode"),
        ({"scheme": "salesforce"}, "scheme"),
        ({"as_of": "2024-09-30"}, "as_of"),
        ({"calculator": object()}, "calculator"),
        ({"records": {"type": "opened"}}, "records"),
        ({"records": 42}, "records"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, Any], argument: str) -> None:
    call: dict[str, Any] = {
        "calculator": FunnelConversion(),
        "records": RECORDS[:10],
        "scheme": SCHEME,
        "as_of": AS_OF,
        **kwargs,
    }
    with pytest.raises(ArgumentError) as err:
        compute_on_dask(call.pop("calculator"), call.pop("records"), **call)
    assert err.value.argument == argument


def test_the_default_scheduler_and_partition_count_give_the_same_answer() -> None:
    """No client: Dask's local threads; default partitions: one per 10 000 records."""
    few = demo.demo_records(opportunities=50, seed=4)
    assert compute_on_dask(Velocity(), few, scheme=SCHEME, as_of=AS_OF) == compute_in_process(
        Velocity(), few, scheme=SCHEME, as_of=AS_OF
    )


def test_importing_pipelinekit_does_not_import_dask() -> None:
    code = "import sys, pipelinekit; print('dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
