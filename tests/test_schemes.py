"""Built-in presets: each one matches its source, validates and round-trips losslessly.

The expected tables below are copied from the sources, not from the presets:
- the Polish pipeline article, the Polish sales-process article and the Japanese Vtiger
  article: their stage lists and percentages, as the articles print them;
- Salesforce: StageName/Probability pairs in the public Developer-Edition sample export
  (sfdc-devorg-sample: Opportunity.csv and OpportunityHistory.csv);
- SuiteCRM: 'sales_probability_dom' in include/language/en_us.lang.php (salesagility/SuiteCRM).
"""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise

import pytest

from pipelinekit import schemes
from pipelinekit.errors import ArgumentError
from pipelinekit.stages import Outcome, StageScheme

ALL = (
    "polish-sales-cycle", "polish-crm-funnel", "vtiger-lead-funnel", "salesforce", "suitecrm",
    "hubspot", "pipedrive", "odoo",
)  # fmt: skip

# seed 000: the article's list, in order. No percentages in the article.
SEED_000_PL = [
    "Potencjalny",
    "Nawiązanie kontaktu",
    "Analiza potrzeb",
    "Oferta",
    "Negocjacje",
    "Umowa",
    "Realizacja",
    "Zrealizowany",
]

# seed 001: (Polish stage name, percentage) from the article's table; "" = empty cell.
SEED_001_TABLE = [
    ("Nowy Prospekt", "0"),
    ("Informacje o potrzebie", "1"),
    ("Firma", "2"),
    ("Spotkanie", "3"),
    ("Analiza możliwości", "5"),
    ("Rozwój Projektu", "10"),
    ("Prezentacja Projektu", "15"),
    ("Ocena ze strony Prospektu", "20"),
    ("Przygotowanie Projektu 2", "25"),
    ("Prezentacja Projektu 2", "30"),
    ("Ocena ze strony Prospektu Projektu 2", "35"),
    ("Negocjacje", "40"),
    ("Negocjacje 2", "50"),
    ("Zamówienie", "80"),
    ("Dostawa", "85"),
    ("Faktura", "95"),
    ("Należność", "100"),
    ("Następne działanie", ""),
]

# seed 004: the article's stage headings 1)-4) and the quote of 5), in order.
SEED_004_JA = ["潜在顧客", "リード資格", "リード育成", "リード変換"]

# Salesforce: StageName -> Probability as found in the sample org's CSVs.
SALESFORCE_SAMPLE = {
    "Prospecting": "10",
    "Qualification": "10",
    "Needs Analysis": "20",
    "Value Proposition": "50",
    "Id. Decision Makers": "60",
    "Perception Analysis": "70",
    "Proposal/Price Quote": "75",
    "Negotiation/Review": "90",
    "Closed Won": "100",
    "Closed Lost": "0",
}

# SuiteCRM: sales_probability_dom (stored stage value -> probability).
SUITECRM_PROBABILITY_DOM = {
    "Prospecting": "10",
    "Qualification": "20",
    "Needs Analysis": "25",
    "Value Proposition": "30",
    "Id. Decision Makers": "40",
    "Perception Analysis": "50",
    "Proposal/Price Quote": "65",
    "Negotiation/Review": "80",
    "Closed Won": "100",
    "Closed Lost": "0",
}

CRM_KEYS = [
    "prospecting",
    "qualification",
    "needs-analysis",
    "value-proposition",
    "id-decision-makers",
    "perception-analysis",
    "proposal-price-quote",
    "negotiation-review",
    "closed-won",
    "closed-lost",
]


def _w(value: str) -> Decimal | None:
    return Decimal(value) if value else None


# -- the registry ---------------------------------------------------------------------------


def test_names_lists_every_preset_in_order() -> None:
    assert schemes.names() == ALL


@pytest.mark.parametrize("name", ALL)
def test_each_preset_builds_a_valid_scheme_named_after_itself(name: str) -> None:
    scheme = schemes.get(name)
    assert isinstance(scheme, StageScheme)
    assert scheme.name == name
    assert scheme.description
    assert scheme.transitions == "forward"
    assert not scheme.reopen
    assert scheme.won_stages
    assert scheme.lost_stages
    assert all(stage.description for stage in scheme.stages)


@pytest.mark.parametrize("name", ALL)
def test_get_returns_the_same_instance_on_every_call(name: str) -> None:
    assert schemes.get(name) is schemes.get(name)


def test_unknown_name_raises_argument_error_naming_name_and_listing_known_presets() -> None:
    with pytest.raises(ArgumentError) as info:
        schemes.get("zoho")
    assert info.value.argument == "name"
    assert "zoho" in str(info.value)
    for name in ALL:
        assert name in str(info.value)


def test_non_string_name_raises_argument_error_not_type_error() -> None:
    with pytest.raises(ArgumentError):
        schemes.get(["salesforce"])  # type: ignore[arg-type]


def test_describe_gives_one_line_for_each_preset() -> None:
    described = schemes.describe()
    assert tuple(described) == ALL
    assert all(text and "\n" not in text for text in described.values())


def test_describe_returns_a_fresh_dict_that_callers_may_change() -> None:
    schemes.describe().clear()
    assert tuple(schemes.describe()) == ALL


# -- properties every preset shares --------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_round_trip_through_json_mode_dump_is_lossless(name: str) -> None:
    scheme = schemes.get(name)
    again = StageScheme.model_validate(scheme.model_dump(mode="json"))
    assert again == scheme
    assert again.model_dump(mode="json") == scheme.model_dump(mode="json")


@pytest.mark.parametrize("name", ALL)
def test_round_trip_through_json_text_is_lossless(name: str) -> None:
    scheme = schemes.get(name)
    again = StageScheme.model_validate_json(scheme.model_dump_json())
    assert again == scheme
    assert [s.labels for s in again.stages] == [s.labels for s in scheme.stages]
    assert [s.weight for s in again.stages] == [s.weight for s in scheme.stages]


@pytest.mark.parametrize("name", ALL)
def test_open_stages_come_before_closed_ones(name: str) -> None:
    scheme = schemes.get(name)
    n_open = len(scheme.open_stages)
    assert all(s.is_open for s in scheme.stages[:n_open])
    assert not any(s.is_open for s in scheme.stages[n_open:])


@pytest.mark.parametrize("name", ALL)
def test_won_stages_come_before_lost_ones(name: str) -> None:
    outcomes = [s.outcome for s in schemes.get(name).stages if not s.is_open]
    first_lost = outcomes.index(Outcome.LOST)
    assert all(o is Outcome.LOST for o in outcomes[first_lost:])


@pytest.mark.parametrize("name", ALL)
def test_every_open_stage_can_be_lost_and_won_by_skipping_ahead(name: str) -> None:
    scheme = schemes.get(name)
    for stage in scheme.open_stages:
        assert scheme.can_move(stage.key, scheme.won_stages[0].key)
        assert scheme.can_move(stage.key, scheme.lost_stages[0].key)


@pytest.mark.parametrize(
    ("name", "locale"),
    [
        ("polish-sales-cycle", "pl"),
        ("polish-crm-funnel", "pl"),
        ("vtiger-lead-funnel", "ja"),
        ("salesforce", "en"),
        ("suitecrm", "en"),
    ],
)
def test_every_stage_has_an_original_language_label(name: str, locale: str) -> None:
    for stage in schemes.get(name).stages:
        assert locale in dict(stage.labels), stage.key


# -- seed 000 ---------------------------------------------------------------------------------


def test_seed_000_has_the_articles_eight_stages_in_order_then_an_added_lost_stage() -> None:
    scheme = schemes.get("polish-sales-cycle")
    assert [s.label_for("pl") for s in scheme.stages[:8]] == SEED_000_PL
    assert len(scheme.stages) == 9
    lost = scheme.stages[8]
    assert lost.is_lost
    assert "pipelinekit" in lost.description
    assert "no lost stage" in lost.description


def test_seed_000_has_no_weights_because_the_article_gives_none() -> None:
    scheme = schemes.get("polish-sales-cycle")
    assert all(s.weight is None for s in scheme.stages)
    assert not scheme.has_weights


def test_seed_000_is_won_from_umowa_on_realizacja_and_zrealizowany_follow() -> None:
    scheme = schemes.get("polish-sales-cycle")
    assert [s.label_for("pl") for s in scheme.won_stages] == [
        "Umowa",
        "Realizacja",
        "Zrealizowany",
    ]
    assert scheme.can_move("contract", "delivery")
    assert scheme.can_move("delivery", "realised")
    assert not scheme.can_move("realised", "contract")


def test_seed_000_keys() -> None:
    assert schemes.get("polish-sales-cycle").keys == (
        "potential",
        "first-contact",
        "needs-analysis",
        "offer",
        "negotiation",
        "contract",
        "delivery",
        "realised",
        "lost",
    )


# -- seed 001 ---------------------------------------------------------------------------------


def test_seed_001_matches_the_articles_table_names_and_percentages() -> None:
    scheme = schemes.get("polish-crm-funnel")
    got = [(s.label_for("pl"), s.weight) for s in scheme.stages[: len(SEED_001_TABLE)]]
    assert got == [(pl, _w(pct)) for pl, pct in SEED_001_TABLE]


def test_seed_001_open_stages_are_the_thirteen_from_0_to_50_percent() -> None:
    scheme = schemes.get("polish-crm-funnel")
    expected = ["0", "1", "2", "3", "5", "10", "15", "20", "25", "30", "35", "40", "50"]
    assert [s.weight for s in scheme.open_stages] == [Decimal(p) for p in expected]
    assert scheme.has_weights


def test_seed_001_won_stages_follow_in_order_80_85_95_100() -> None:
    scheme = schemes.get("polish-crm-funnel")
    won = scheme.won_stages
    assert [(s.label_for("pl"), s.weight) for s in won[:4]] == [
        ("Zamówienie", Decimal("80")),
        ("Dostawa", Decimal("85")),
        ("Faktura", Decimal("95")),
        ("Należność", Decimal("100")),
    ]
    for a, b in pairwise(won):
        assert scheme.can_move(a.key, b.key)
        assert not scheme.can_move(b.key, a.key)


def test_seed_001_after_sales_next_action_is_won_with_no_weight_as_in_the_article() -> None:
    stage = schemes.get("polish-crm-funnel").stage("next-action")
    assert stage.label_for("pl") == "Następne działanie"
    assert stage.is_won
    assert stage.weight is None


def test_seed_001_has_an_added_lost_stage_with_weight_zero() -> None:
    scheme = schemes.get("polish-crm-funnel")
    (lost,) = scheme.lost_stages
    assert lost.key == "lost"
    assert lost.weight == Decimal("0")
    assert "pipelinekit" in lost.description
    assert scheme.stages[-1] is lost


def test_seed_001_stages_may_be_skipped() -> None:
    scheme = schemes.get("polish-crm-funnel")
    assert scheme.can_move("new-prospect", "negotiation")
    assert scheme.can_move("meeting", "order")


# -- seed 004 ---------------------------------------------------------------------------------


def test_seed_004_starts_at_lead() -> None:
    assert schemes.get("vtiger-lead-funnel").stages[0].key == "lead"


def test_seed_004_open_stages_follow_the_articles_lead_funnel_with_japanese_labels() -> None:
    scheme = schemes.get("vtiger-lead-funnel")
    assert [s.key for s in scheme.open_stages] == [
        "lead",
        "qualification",
        "nurturing",
        "conversion",
        "quote",
    ]
    assert [s.label_for("ja") for s in scheme.open_stages[:4]] == SEED_004_JA
    assert scheme.stage("quote").label_for("ja") in "見積もりと請求書の管理"


def test_seed_004_japanese_labels_of_the_articles_stages_occur_in_the_article() -> None:
    # The article text (seed 004) contains these phrases verbatim.
    article_phrases = {*SEED_004_JA, "見積もり", "取引の成立"}
    scheme = schemes.get("vtiger-lead-funnel")
    for key in ("lead", "qualification", "nurturing", "conversion", "quote", "won"):
        assert scheme.stage(key).label_for("ja") in article_phrases


def test_seed_004_weights_are_ours_and_rise_through_the_funnel() -> None:
    scheme = schemes.get("vtiger-lead-funnel")
    assert [s.weight for s in scheme.stages] == [
        Decimal(p) for p in ("5", "10", "20", "40", "60", "100", "0")
    ]
    assert "pipelinekit" in scheme.description
    assert "gives no percentages" in scheme.description


def test_seed_004_closes_as_won_or_lost() -> None:
    scheme = schemes.get("vtiger-lead-funnel")
    assert [s.key for s in scheme.won_stages] == ["won"]
    assert [s.key for s in scheme.lost_stages] == ["lost"]


# -- Salesforce -------------------------------------------------------------------------------


def test_salesforce_keys_are_the_published_slugs() -> None:
    assert list(schemes.get("salesforce").keys) == CRM_KEYS


def test_salesforce_probabilities_match_the_sample_org() -> None:
    scheme = schemes.get("salesforce")
    got = {s.label: s.weight for s in scheme.stages}
    assert got == {stage: Decimal(p) for stage, p in SALESFORCE_SAMPLE.items()}
    assert [s.label for s in scheme.stages] == list(SALESFORCE_SAMPLE)


def test_salesforce_closed_won_is_won_and_closed_lost_is_lost() -> None:
    scheme = schemes.get("salesforce")
    assert scheme.stage("closed-won").is_won
    assert scheme.stage("closed-lost").is_lost
    assert len(scheme.open_stages) == 8


# -- SuiteCRM ---------------------------------------------------------------------------------


def test_suitecrm_keys_match_the_salesforce_slugs() -> None:
    assert list(schemes.get("suitecrm").keys) == CRM_KEYS


def test_suitecrm_probabilities_match_sales_probability_dom() -> None:
    scheme = schemes.get("suitecrm")
    weights = [s.weight for s in scheme.stages]
    assert weights == [Decimal(p) for p in SUITECRM_PROBABILITY_DOM.values()]
    for stage, value in zip(scheme.stages, SUITECRM_PROBABILITY_DOM, strict=True):
        assert repr(value) in stage.description


def test_suitecrm_displays_id_decision_makers_as_in_sales_stage_dom() -> None:
    stage = schemes.get("suitecrm").stage("id-decision-makers")
    assert stage.label == "Identifying Decision Makers"


def test_suitecrm_and_salesforce_differ_in_weights_but_share_closed_stages() -> None:
    sf, sc = schemes.get("salesforce"), schemes.get("suitecrm")
    assert sf.stage("negotiation-review").weight == Decimal("90")
    assert sc.stage("negotiation-review").weight == Decimal("80")
    assert [s.key for s in sf.stages if not s.is_open] == [
        s.key for s in sc.stages if not s.is_open
    ]


@pytest.mark.parametrize(
    ("old", "new"),
    [("seed-000", "polish-sales-cycle"), ("seed-001", "polish-crm-funnel"),
     ("seed-004", "vtiger-lead-funnel")],
)  # fmt: skip
def test_the_names_presets_had_before_still_work(old: str, new: str) -> None:
    assert schemes.get(old) is schemes.get(new)
    assert schemes.get(old).name == new
    assert old not in schemes.names() and old not in schemes.describe()
