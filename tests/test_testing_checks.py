"""check_scheme findings and check_calculator laws (with good and broken calculators)."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import datetime
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from pipelinekit import ArgumentError, History, Stage, StageScheme, schemes
from pipelinekit.testing import Finding, check_calculator, check_scheme


def scheme_of(*stages: dict[str, Any], **options: Any) -> StageScheme:
    return StageScheme.model_validate({"name": "mine", "stages": list(stages), **options})


LEAD = {"key": "lead", "label": "Lead", "weight": "10"}
OFFER = {"key": "offer", "label": "Offer", "weight": "50"}
WON = {"key": "won", "label": "Won", "weight": "100", "outcome": "won"}
LOST = {"key": "lost", "label": "Lost", "weight": "0", "outcome": "lost"}


def codes(findings: list[Finding]) -> list[tuple[str, str, str | None]]:
    return [(f.severity, f.code, f.stage) for f in findings]


def test_a_sound_scheme_has_no_findings() -> None:
    assert check_scheme(scheme_of(LEAD, OFFER, WON, LOST)) == []
    assert check_scheme(schemes.get("salesforce")) == []


def test_weights_falling_along_the_funnel_are_a_warning_on_the_later_stage() -> None:
    scheme = scheme_of({**LEAD, "weight": "60"}, {**OFFER, "weight": "40"}, WON, LOST)
    assert codes(check_scheme(scheme)) == [("warning", "falling-weight", "offer")]
    assert "'lead' at 60 %" in check_scheme(scheme)[0].message


def test_equal_weights_do_not_fall() -> None:
    assert check_scheme(scheme_of(LEAD, {**OFFER, "weight": "10"}, WON, LOST)) == []


def test_closed_stage_weights_are_warnings() -> None:
    scheme = scheme_of(LEAD, {**WON, "weight": "80"}, {**LOST, "weight": "5"})
    assert codes(check_scheme(scheme)) == [
        ("warning", "won-weight", "won"),
        ("warning", "lost-weight", "lost"),
    ]


def test_partial_weights_name_each_unweighted_open_stage() -> None:
    scheme = scheme_of({**LEAD, "weight": None}, OFFER, WON, LOST)
    assert codes(check_scheme(scheme)) == [("warning", "partial-weights", "lead")]


def test_no_weights_and_no_lost_stage_are_notes() -> None:
    scheme = scheme_of({**LEAD, "weight": None}, {**WON, "weight": None})
    assert codes(check_scheme(scheme)) == [
        ("info", "no-weights", None),
        ("info", "no-lost-stage", None),
    ]


def test_duplicate_labels_are_found_ignoring_case_spaces_and_per_locale() -> None:
    scheme = scheme_of(
        {**LEAD, "labels": {"pl": "Etap"}},
        {**OFFER, "label": " lead ", "labels": {"pl": "Etap"}},
        WON,
        LOST,
    )
    found = check_scheme(scheme)
    assert codes(found) == [
        ("warning", "duplicate-label", "offer"),
        ("warning", "duplicate-label", "offer"),
    ]
    assert "locale 'pl'" in found[1].message


def test_errors_come_before_warnings_and_notes() -> None:
    scheme = StageScheme.model_construct(
        name="draft",
        stages=(
            Stage(key="lead", label="Lead", weight=50),
            Stage(key="offer", label="Offer", weight=10),
            Stage(key="won", label="Won", weight=100, outcome="won"),
        ),
        transitions="adjacent",
        edges=(),
        reopen=False,
        description="",
    )
    assert [f.severity for f in check_scheme(scheme)] == ["warning", "info"]
    broken = scheme.model_copy(update={"stages": scheme.stages[::-1][1:] + scheme.stages[:1]})
    severities = [f.severity for f in check_scheme(broken)]
    assert severities == sorted(severities, key=["error", "warning", "info"].index)


def test_unvalidated_schemes_report_unreachable_stages_dead_ends_and_duplicate_keys() -> None:
    stages = (
        Stage(key="lead", label="Lead"),
        Stage(key="won", label="Won", outcome="won"),
        Stage(key="late", label="Late"),
        Stage(key="lead", label="Lead again"),
    )
    draft = StageScheme.model_construct(
        name="draft", stages=stages, transitions="forward", edges=(), reopen=False, description=""
    )
    found = [(f.code, f.stage) for f in check_scheme(draft) if f.severity == "error"]
    assert ("duplicate-key", "lead") in found
    dead_end = draft.model_copy(update={"stages": stages[:3]})
    assert (check_scheme(dead_end)[0].code, check_scheme(dead_end)[0].stage) == ("dead-end", "late")
    graph = StageScheme.model_construct(
        name="g",
        stages=stages[:3],
        transitions="graph",
        edges=(("lead", "won"),),
        reopen=False,
        description="",
    )
    assert ("unreachable-stage", "late") in [(f.code, f.stage) for f in check_scheme(graph)]


def test_check_scheme_rejects_what_is_not_a_scheme() -> None:
    with pytest.raises(ArgumentError):
        check_scheme({"name": "x"})  # type: ignore[arg-type]


# -- check_calculator ----------------------------------------------------------------------


SCHEME = scheme_of(LEAD, OFFER, WON, LOST)
HISTORY = History.from_records(
    [
        {"type": "opened", "opportunity_id": "a", "at": "2024-01-01T00:00:00Z", "stage": "lead"},
        {"type": "opened", "opportunity_id": "b", "at": "2024-01-02T00:00:00Z", "stage": "lead"},
        {"type": "stage_changed", "opportunity_id": "a", "at": "2024-01-03T00:00:00Z",
         "stage": "offer"},
        {"type": "opened", "opportunity_id": "c", "at": "2024-01-04T00:00:00Z", "stage": "offer"},
        {"type": "stage_changed", "opportunity_id": "b", "at": "2024-01-05T00:00:00Z",
         "stage": "lost"},
        {"type": "stage_changed", "opportunity_id": "a", "at": "2024-01-06T00:00:00Z",
         "stage": "won"},
    ],
    scheme=SCHEME,
)  # fmt: skip


class StageCounts(BaseModel):
    """Opportunities per stage; counts add up, so results merge."""

    model_config = ConfigDict(frozen=True)

    counts: tuple[tuple[str, int], ...]

    def merge(self, other: StageCounts) -> StageCounts:
        total = Counter(dict(self.counts)) + Counter(dict(other.counts))
        return StageCounts(counts=tuple(sorted(total.items())))


class CountByStage:
    def compute(self, history: History, *, as_of: datetime) -> StageCounts:
        pipeline = history.until(as_of).as_of(as_of)
        counts = Counter(o.stage for o in pipeline.values())
        return StageCounts(counts=tuple(sorted(counts.items())))


class PeeksAhead(CountByStage):
    """Counts every opportunity in the history, even those opened after as_of."""

    def compute(self, history: History, *, as_of: datetime) -> StageCounts:
        return StageCounts(counts=(("all", len(history.opportunity_ids)),))


class Moody:
    def __init__(self) -> None:
        self.calls = itertools.count()

    def compute(self, history: History, *, as_of: datetime) -> int:
        return next(self.calls)


class Constant:
    def compute(self, history: History, *, as_of: datetime) -> int:
        return 42


class MergesWrong(CountByStage):
    def compute(self, history: History, *, as_of: datetime) -> Any:
        base = super().compute(history, as_of=as_of)
        return MaxCounts(counts=base.counts)


class MaxCounts(StageCounts):
    def merge(self, other: StageCounts) -> StageCounts:
        return self if sum(n for _, n in self.counts) >= sum(n for _, n in other.counts) else other


def test_a_lawful_mergeable_calculator_passes_every_law() -> None:
    assert check_calculator(CountByStage(), HISTORY) == ("no-look-ahead", "determinism", "merge")


def test_merge_can_be_skipped_or_required() -> None:
    assert check_calculator(CountByStage(), HISTORY, merge=False) == (
        "no-look-ahead",
        "determinism",
    )
    with pytest.raises(AssertionError, match="has no merge method"):
        check_calculator(Constant(), HISTORY, merge=True)


def test_a_calculator_that_peeks_after_as_of_is_caught() -> None:
    with pytest.raises(AssertionError, match=r"no-look-ahead: at as_of=2024-01-0") as info:
        check_calculator(PeeksAhead(), HISTORY)
    assert "history.until(as_of)" in str(info.value)


def test_look_ahead_is_checked_at_the_given_instants_only() -> None:
    end = "2024-02-01T00:00:00+00:00"
    assert check_calculator(PeeksAhead(), HISTORY, as_of_dates=[end], merge=False)
    with pytest.raises(AssertionError, match="no-look-ahead"):
        check_calculator(PeeksAhead(), HISTORY, as_of_dates=["2024-01-03T12:00:00Z"])


def test_a_nondeterministic_calculator_is_caught() -> None:
    with pytest.raises(AssertionError, match=r"determinism|no-look-ahead"):
        check_calculator(Moody(), HISTORY)


def test_a_merge_that_does_not_add_up_is_caught() -> None:
    with pytest.raises(AssertionError, match=r"merge: .*merged from two groups"):
        check_calculator(MergesWrong(), HISTORY)


def test_errors_from_compute_propagate_with_a_note() -> None:
    class Fails:
        def compute(self, history: History, *, as_of: datetime) -> None:
            raise ZeroDivisionError("boom")

    with pytest.raises(ZeroDivisionError) as info:
        check_calculator(Fails(), HISTORY)
    assert any("check_calculator" in note for note in info.value.__notes__)


def test_an_empty_history_needs_explicit_instants() -> None:
    empty = HISTORY.for_opportunities(())
    with pytest.raises(ArgumentError, match="as_of_dates"):
        check_calculator(CountByStage(), empty)
    assert check_calculator(CountByStage(), empty, as_of_dates=["2024-01-01T00:00:00Z"])


def test_bad_arguments_are_argument_errors() -> None:
    with pytest.raises(ArgumentError):
        check_calculator(CountByStage(), HISTORY, as_of_dates=["2024-01-01"])
    with pytest.raises(ArgumentError):
        check_calculator(CountByStage(), HISTORY, merge="yes")  # type: ignore[arg-type]
