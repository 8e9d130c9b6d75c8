"""Stage schemes: validation at construction, policies, and the data round trip."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from pipelinekit import ArgumentError, SchemeError, Stage, StageScheme


def scheme_dict(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "t",
        "stages": [
            {"key": "lead", "label": "Lead", "weight": "10"},
            {"key": "offer", "label": "Offer", "weight": "40"},
            {"key": "nego", "label": "Negotiation", "weight": "70"},
            {"key": "order", "label": "Order", "weight": "80", "outcome": "won"},
            {"key": "paid", "label": "Paid", "weight": "100", "outcome": "won"},
            {"key": "lost", "label": "Lost", "weight": "0", "outcome": "lost"},
        ],
    }
    base.update(overrides)
    return base


def problems_of(data: dict[str, Any]) -> tuple[str, ...]:
    with pytest.raises(SchemeError) as info:
        StageScheme.model_validate(data)
    return info.value.problems


def test_valid_scheme_exposes_stages_in_funnel_order() -> None:
    scheme = StageScheme.model_validate(scheme_dict())
    assert scheme.keys == ("lead", "offer", "nego", "order", "paid", "lost")
    assert [s.key for s in scheme.open_stages] == ["lead", "offer", "nego"]
    assert [s.key for s in scheme.won_stages] == ["order", "paid"]
    assert [s.key for s in scheme.lost_stages] == ["lost"]
    assert scheme.stage("offer").weight == Decimal("40")
    assert scheme.index("paid") == 4
    assert scheme.has_weights


def test_empty_scheme_is_a_scheme_error() -> None:
    assert any("no stages" in p for p in problems_of(scheme_dict(stages=[])))


def test_duplicate_keys_are_reported_with_both_positions() -> None:
    data = scheme_dict()
    data["stages"].append({"key": "offer", "label": "Again"})
    (problem,) = problems_of(data)
    assert "duplicate stage key 'offer'" in problem
    assert "stages[1]" in problem and "stages[6]" in problem


@pytest.mark.parametrize("weight", ["-1", "100.01", "NaN", "abc"])
def test_weight_out_of_range_names_the_stage_and_field(weight: str) -> None:
    data = scheme_dict()
    data["stages"][1]["weight"] = weight
    (problem,) = problems_of(data)
    assert "stage 'offer' (stages[1])" in problem
    assert "weight" in problem


def test_no_open_stage_is_reported() -> None:
    data = scheme_dict(
        stages=[
            {"key": "won", "label": "Won", "outcome": "won"},
            {"key": "lost", "label": "Lost", "outcome": "lost"},
        ]
    )
    assert any("no open stage" in p for p in problems_of(data))


def test_no_won_stage_is_reported() -> None:
    data = scheme_dict(
        stages=[
            {"key": "lead", "label": "Lead"},
            {"key": "lost", "label": "Lost", "outcome": "lost"},
        ]
    )
    assert any("no won stage" in p for p in problems_of(data))


def test_first_stage_must_be_open() -> None:
    data = scheme_dict()
    data["stages"].insert(0, data["stages"].pop(3))
    assert any("first stage 'order' is closed" in p for p in problems_of(data))


def test_graph_naming_unknown_keys_lists_every_offender() -> None:
    data = scheme_dict(
        transitions="graph",
        edges=[["lead", "offer"], ["offer", "ghost"], ["phantom", "order"]],
    )
    found = problems_of(data)
    assert any("unknown stage 'ghost'" in p for p in found)
    assert any("unknown stage 'phantom'" in p for p in found)


def test_edges_without_graph_policy_are_rejected() -> None:
    found = problems_of(scheme_dict(edges=[["lead", "offer"]]))
    assert any("only used with transitions='graph'" in p for p in found)


def test_unreachable_stage_is_reported_under_graph_policy() -> None:
    data = scheme_dict(
        transitions="graph",
        edges={"lead": ["nego"], "nego": ["order"], "order": ["paid"], "offer": ["nego"]},
    )
    found = problems_of(data)
    assert any("stage 'offer' is unreachable" in p for p in found)


def test_open_dead_end_is_reported() -> None:
    data = scheme_dict(
        transitions="graph",
        edges={"lead": ["offer", "nego"], "nego": ["order"], "order": ["paid"]},
    )
    found = problems_of(data)
    assert any("open stage 'offer' is a dead end" in p for p in found)


def test_won_stage_before_an_open_stage_makes_that_stage_a_dead_end_under_forward() -> None:
    data = scheme_dict(
        stages=[
            {"key": "lead", "label": "Lead"},
            {"key": "won", "label": "Won", "outcome": "won"},
            {"key": "late", "label": "Late"},
        ]
    )
    assert any("'late' is a dead end" in p for p in problems_of(data))


def test_all_problems_are_reported_at_once() -> None:
    data = {
        "name": "bad",
        "stages": [
            {"key": "a", "label": "A", "weight": "300"},
            {"key": "Bad Key", "label": "B"},
        ],
    }
    with pytest.raises(SchemeError) as info:
        StageScheme.model_validate(data)
    assert len(info.value.problems) == 2
    assert info.value.scheme == "bad"
    assert "stage scheme 'bad' is invalid" in str(info.value)


def test_scheme_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="no stages"):
        StageScheme(name="x", stages=())


def test_forward_policy_allows_skips_and_forbids_going_back() -> None:
    scheme = StageScheme.model_validate(scheme_dict())
    assert scheme.can_move("lead", "nego")
    assert scheme.can_move("lead", "paid")
    assert not scheme.can_move("nego", "offer")
    assert scheme.move_rule("nego", "offer") == "forward"


def test_every_open_stage_may_move_to_lost_under_every_policy() -> None:
    for policy in ("forward", "adjacent", "any"):
        scheme = StageScheme.model_validate(scheme_dict(transitions=policy))
        assert all(scheme.can_move(s.key, "lost") for s in scheme.open_stages), policy
    graph = StageScheme.model_validate(
        scheme_dict(
            transitions="graph",
            edges={"lead": ["offer"], "offer": ["nego"], "nego": ["order"], "order": ["paid"]},
        )
    )
    assert all(graph.can_move(s.key, "lost") for s in graph.open_stages)


def test_adjacent_policy_only_moves_to_the_next_stage() -> None:
    scheme = StageScheme.model_validate(scheme_dict(transitions="adjacent"))
    assert scheme.can_move("lead", "offer")
    assert not scheme.can_move("lead", "nego")
    assert scheme.move_rule("lead", "nego") == "adjacent"
    assert scheme.can_move("order", "paid")


def test_any_policy_allows_going_back_between_open_stages() -> None:
    scheme = StageScheme.model_validate(scheme_dict(transitions="any"))
    assert scheme.can_move("nego", "lead")


def test_closed_stages_are_final_unless_reopen_is_allowed() -> None:
    scheme = StageScheme.model_validate(scheme_dict())
    assert not scheme.can_move("lost", "lead")
    assert scheme.move_rule("lost", "lead") == "reopen"
    assert not scheme.can_move("paid", "order")
    assert scheme.can_move("order", "paid")  # moving on through won stages follows the policy
    assert not scheme.can_move("order", "lost")
    reopening = StageScheme.model_validate(scheme_dict(reopen=True))
    assert reopening.can_move("lost", "lead")
    assert reopening.can_move("paid", "nego")


def test_staying_in_a_stage_is_always_allowed() -> None:
    scheme = StageScheme.model_validate(scheme_dict(transitions="adjacent"))
    assert all(scheme.can_move(k, k) for k in scheme.keys)


def test_unknown_stage_lookup_is_an_argument_error_naming_the_key() -> None:
    scheme = StageScheme.model_validate(scheme_dict())
    with pytest.raises(ArgumentError, match="unknown stage key 'ghost'") as info:
        scheme.stage("ghost")
    assert info.value.argument == "stage"
    with pytest.raises(ArgumentError):
        scheme.can_move("lead", "ghost")


def test_scheme_without_weights_is_valid_and_says_so() -> None:
    data = scheme_dict()
    for stage in data["stages"]:
        del stage["weight"]
    scheme = StageScheme.model_validate(data)
    assert not scheme.has_weights
    assert scheme.stage("offer").weight is None


def test_scheme_round_trips_losslessly_through_json() -> None:
    data = scheme_dict(transitions="graph", reopen=True)
    data["edges"] = {"lead": ["offer", "nego"], "offer": ["nego"], "nego": ["order"]}
    data["edges"]["order"] = ["paid"]
    data["stages"][0]["labels"] = {"pl": "Potencjalny", "en": "Lead"}
    scheme = StageScheme.model_validate(data)
    dumped = scheme.model_dump(mode="json")
    assert StageScheme.model_validate(dumped) == scheme
    assert StageScheme.model_validate_json(json.dumps(dumped)) == scheme
    assert StageScheme.model_validate_json(scheme.model_dump_json()) == scheme
    assert dumped["stages"][0]["labels"] == {"en": "Lead", "pl": "Potencjalny"}


def test_json_schema_is_published() -> None:
    schema = StageScheme.model_json_schema()
    assert schema["title"] == "StageScheme"
    assert {"name", "stages"} <= set(schema["required"])
    assert "transitions" in schema["properties"]
    json.dumps(schema)


def test_scheme_from_bad_json_is_a_scheme_error() -> None:
    with pytest.raises(SchemeError):
        StageScheme.model_validate_json('{"name": "x", "stages": [{"key": 1}]}')


def test_schemes_are_frozen() -> None:
    scheme = StageScheme.model_validate(scheme_dict())
    with pytest.raises(ValueError, match="frozen"):
        scheme.name = "other"  # type: ignore[misc]


def test_stage_label_for_locale_falls_back_to_label() -> None:
    stage = Stage(key="offer", label="Offer", labels={"pl": "Oferta"})
    assert stage.label_for("pl") == "Oferta"
    assert stage.label_for("ja") == "Offer"


def test_stage_alone_reports_a_bad_key_as_scheme_error() -> None:
    with pytest.raises(SchemeError, match="key"):
        Stage(key="Not A Slug", label="x")


def test_model_validate_honours_strict_instead_of_dropping_it() -> None:
    data = scheme_dict()
    StageScheme.model_validate(data)  # lax: lists become tuples, strings become Decimals
    with pytest.raises(SchemeError, match="valid tuple"):
        StageScheme.model_validate(data, strict=True)
    as_json = json.dumps(scheme_dict(reopen="true"))
    assert StageScheme.model_validate_json(as_json).reopen is True
    with pytest.raises(SchemeError, match="'reopen': Input should be a valid boolean"):
        StageScheme.model_validate_json(as_json, strict=True)


# -- labels to keys -----------------------------------------------------------------------


def test_key_for_reads_keys_labels_and_every_locale_ignoring_case_and_spacing() -> None:
    from pipelinekit import schemes

    polish = schemes.get("polish-crm-funnel")
    for stage in polish.stages:
        for text in (stage.key, stage.label, *(label for _, label in stage.labels)):
            assert polish.key_for(text) == stage.key
            assert polish.key_for(f"  {text.upper()} ") == stage.key
    salesforce = schemes.get("salesforce")
    assert salesforce.key_for("negotiation/review") == "negotiation-review"
    assert salesforce.key_for("Closed\tWon") == "closed-won"


def test_key_for_an_unknown_label_suggests_the_closest_stage() -> None:
    from pipelinekit import schemes

    scheme = schemes.get("salesforce")
    with pytest.raises(ArgumentError, match="did you mean 'negotiation-review'") as info:
        scheme.key_for("Negotiation Review")
    assert info.value.argument == "label"
    with pytest.raises(ArgumentError, match="its stages are") as far:
        scheme.key_for("Contract Sent")
    assert "did you mean" not in str(far.value)
    with pytest.raises(ArgumentError, match="expected a stage label, got int"):
        scheme.key_for(3)  # type: ignore[arg-type]


def test_key_for_a_label_two_stages_share_is_an_error() -> None:
    data = scheme_dict()
    data["stages"][1]["labels"] = {"pl": "Lead"}
    scheme = StageScheme.model_validate(data)
    with pytest.raises(ArgumentError, match=r"'lead ' names several stages.*\['lead', 'offer'\]"):
        scheme.key_for("lead ")  # not the key itself: the label, shared
    assert scheme.key_for("lead") == "lead"  # the key itself wins
    assert scheme.suggest("LEAD") == "lead"  # the earlier stage in funnel order


def test_an_unknown_stage_in_a_record_says_which_key_has_that_label() -> None:
    from pipelinekit import History, RecordError, schemes

    recs = [
        {"type": "opened", "opportunity_id": "o-1", "at": "2024-01-05T10:00:00Z",
         "stage": "Negotiation/Review"},
    ]  # fmt: skip
    with pytest.raises(RecordError, match=r"did you mean 'negotiation-review'\?") as info:
        History.from_records(recs, scheme=schemes.get("salesforce"))
    assert (info.value.index, info.value.field) == (0, "stage")
    with pytest.raises(ArgumentError, match="did you mean 'closed-won'"):
        schemes.get("salesforce").stage("Closed Won")
