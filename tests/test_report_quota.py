"""Quota attainment: hand-computed owner and team rows, properties, bad arguments."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelinekit import ArgumentError, History, demo, schemes
from pipelinekit.categories import CategoryMap
from pipelinekit.reports.quota import Quota, QuotaAttainment

SF = schemes.get("salesforce")
AS_OF = "2024-09-30T00:00:00Z"
D = Decimal


def deal(oid: str, owner: str, stage: str, amount: str, close: str | None, at: str = "2024-07-01"):
    rec: dict[str, Any] = {
        "type": "opened",
        "opportunity_id": oid,
        "at": f"{at}T00:00:00Z",
        "stage": "prospecting",
        "amount": amount,
        "currency": "EUR",
        "owner": owner,
        "expected_close": close,
    }
    out = [rec]
    if stage != "prospecting":
        out.append({"type": "stage_changed", "opportunity_id": oid, "stage": stage,
                    "at": f"{at}T12:00:00Z"})  # fmt: skip
    return out


RECORDS = [
    *deal("a", "ann", "closed-won", "300", "2024-07-20", at="2024-07-15"),  # won Q3
    *deal("b", "ann", "negotiation-review", "500", "2024-09-15"),  # commit, 90 %
    *deal("c", "ann", "prospecting", "200", "2024-08-20"),  # pipeline, 10 %
    *deal("h", "ann", "proposal-price-quote", "100", "2024-09-01"),  # most likely -> omitted
    *deal("d", "bob", "value-proposition", "400", "2024-11-10"),  # best case, Q4
    *deal("e", "bob", "closed-lost", "100", "2024-08-10", at="2024-08-01"),  # lost Q3
    *deal("g", "chen", "prospecting", "50", None),  # no expected close
]
QUOTAS = {("ann", "2024-Q3"): 1000, "bob": 600, ("dora", "2024-Q3"): 250}


def history() -> History:
    return History.from_records(RECORDS, scheme=SF)


def calc(**kwargs: Any) -> QuotaAttainment:
    args: dict[str, Any] = {
        "quotas": QUOTAS,
        "teams": {"east": ("ann", "bob", "zed")},
        "team_quotas": {("east", "2024-Q3"): 2000},
        "overrides": {"h": "omitted"},
    } | kwargs
    return QuotaAttainment(**args)


def test_owner_row_hand_computed() -> None:
    r = calc().compute(history(), as_of=AS_OF)
    ann = r.row("ann", "2024-Q3").to_record()
    assert ann["quota"] == D(1000)
    assert ann["won"] == D(300)
    assert ann["gap"] == D(700)
    assert ann["pipeline"] == D(800)  # b 500 + c 200 + h 100 (omitted, still open)
    assert ann["weighted_pipeline"] == D(545)  # 450 + 20 + 75
    assert ann["coverage"] == pytest.approx(800 / 700)
    assert ann["attainment"] == pytest.approx(0.3)
    assert (ann["won_deals"], ann["pipeline_deals"]) == (1, 3)
    cats = {
        k: ann[f"category_{k}"]
        for k in ("pipeline", "best_case", "most_likely", "commit", "closed", "omitted")
    }
    assert cats == {"pipeline": D(200), "best_case": D(0), "most_likely": D(0),
                    "commit": D(500), "closed": D(300), "omitted": D(100)}  # fmt: skip
    assert ann["commit_forecast"] == D(800)  # commit + closed
    assert ann["best_case_forecast"] == D(800)
    assert ann["open_pipeline"] == D(700)  # open categories, without the omitted deal


def test_quota_every_period_lost_deals_and_owners_without_deals() -> None:
    r = calc().compute(history(), as_of=AS_OF)
    bob3 = r.row("bob", "2024-Q3")
    assert (bob3.quota, bob3.won, bob3.gap, bob3.pipeline) == (D(600), D(0), D(600), D(0))
    assert (bob3.coverage, bob3.attainment) == (0.0, 0.0)
    assert dict(bob3.categories)["omitted"] == D(100)  # the lost deal e
    bob4 = r.row("bob", "2024-Q4")
    assert (bob4.quota, bob4.pipeline, bob4.weighted_pipeline) == (D(600), D(400), D(200))
    dora = r.row("dora", "2024-Q3")  # a quota and no deals: still a row
    assert (dora.quota, dora.won, dora.gap) == (D(250), D(0), D(250))
    with pytest.raises(ArgumentError):
        r.row("ann", "2024-Q4")  # no quota and no deals in Q4
    assert r.undated == ("g",)
    assert {row.period.label for row in r.rows} == {"2024-Q3", "2024-Q4"}


def test_owner_without_quota_is_kept_with_quota_none() -> None:
    recs = RECORDS + deal("x", "xavier", "prospecting", "70", "2024-09-01")
    r = calc().compute(History.from_records(recs, scheme=SF), as_of=AS_OF)
    x = r.row("xavier", "2024-Q3")
    assert (x.quota, x.gap, x.coverage, x.attainment, x.pipeline) == (
        None, None, None, None, D(70))  # fmt: skip
    assert x.note == "no quota"


def test_team_rows_and_target_mismatch() -> None:
    r = calc().compute(history(), as_of=AS_OF)
    east = r.row("east", "2024-Q3", level="team")
    assert (east.quota, east.won, east.pipeline) == (D(2000), D(300), D(800))
    assert east.member_quota == D(1600)  # ann 1000 + bob 600; zed has none
    assert east.mismatch == D(400)
    assert east.gap == D(1700)
    assert east.attainment == pytest.approx(0.15)
    assert "differs" in (east.note or "")
    east4 = r.row("east", "2024-Q4", level="team")
    assert (east4.quota, east4.member_quota, east4.mismatch, east4.pipeline) == (
        None, D(600), None, D(400))  # fmt: skip


def test_quota_met_and_zero_quota_have_no_ratios_with_a_note() -> None:
    r = QuotaAttainment(quotas=[Quota(who="ann", period="2024-Q3", amount="200"),
                                Quota(who="bob", period="2024-Q3", amount="0")]
                        ).compute(history(), as_of=AS_OF)  # fmt: skip
    ann = r.row("ann", "2024-Q3")
    assert (ann.gap, ann.coverage, ann.attainment) == (D(-100), None, 1.5)
    assert "quota met" in (ann.note or "")
    bob = r.row("bob", "2024-Q3")
    assert (bob.gap, bob.coverage, bob.attainment) == (D(0), None, None)
    assert "quota is 0" in (bob.note or "")


def test_close_instant_is_placed_in_the_local_calendar() -> None:
    recs = [
        {"type": "opened", "opportunity_id": "w", "at": "2024-06-30T23:30:00Z",
         "stage": "closed-won", "amount": "10", "currency": "EUR", "owner": "ann"},
    ]  # fmt: skip
    h = History.from_records(recs, scheme=SF)
    utc = QuotaAttainment().compute(h, as_of=AS_OF)
    plus2 = QuotaAttainment(tz=timezone(timedelta(hours=2))).compute(h, as_of=AS_OF)
    assert utc.rows[0].period.label == "2024-Q2"
    assert plus2.rows[0].period.label == "2024-Q3"


def test_monthly_periods_and_labels() -> None:
    r = QuotaAttainment(quotas={("ann", "2024-09"): 500}, period="month").compute(
        history(), as_of=AS_OF
    )
    sep = r.row("ann", "2024-09")
    assert (sep.quota, sep.pipeline) == (D(500), D(600))  # b 500 + h 100


# -- properties -----------------------------------------------------------------------

histories = st.integers(0, 10_000).map(lambda s: demo.demo_history(opportunities=25, seed=s))
T0 = datetime(2024, 1, 1, tzinfo=UTC)
as_ofs = st.integers(0, 420).map(lambda d: T0 + timedelta(days=d))
kinds = st.sampled_from(["month", "quarter", "quarter:4", "fiscal_year"])
TEAM = {"ab": ("ann", "bob"), "all": ("ann", "bob", "chen")}


@settings(max_examples=30, deadline=None)
@given(histories, as_ofs, kinds)
def test_totals_reconcile_with_the_snapshot(h: History, t: datetime, kind: str) -> None:
    r = QuotaAttainment(period=kind, quotas={"ann": 1000}, teams=TEAM).compute(h, as_of=t)
    pipe = h.as_of(t)
    owners = [row for row in r.rows if row.level == "owner"]
    won = sum((o.amount or D(0) for o in pipe.won().values()), D(0))
    dated_open = sum(
        (o.amount or D(0) for o in pipe.open().values() if o.expected_close is not None), D(0)
    )
    assert sum((row.won for row in owners), D(0)) == won
    assert sum((row.pipeline for row in owners), D(0)) == dated_open
    assert sum(row.won_deals for row in owners) == len(pipe.won())
    for row in r.rows:
        if row.level == "team" and row.who == "all":
            same = [x for x in owners if x.period == row.period]
            assert row.won == sum((x.won for x in same), D(0))


@settings(max_examples=25, deadline=None)
@given(histories, as_ofs, kinds, st.integers(0, 2**32))
def test_merge_over_a_split_equals_the_whole(h: History, t: datetime, kind: str, seed: int) -> None:
    ids = list(h.opportunity_ids)
    random.Random(seed).shuffle(ids)
    cut = len(ids) // 2
    c = QuotaAttainment(period=kind, quotas={"ann": 1000, "bob": 0}, teams=TEAM,
                        team_quotas={"ab": 5000})  # fmt: skip
    whole = c.compute(h, as_of=t)
    a = c.compute(h.for_opportunities(ids[:cut]), as_of=t)
    b = c.compute(h.for_opportunities(ids[cut:]), as_of=t)
    assert a.merge(b) == whole


@settings(max_examples=25, deadline=None)
@given(histories, as_ofs, st.integers(1, 100))
def test_no_look_ahead(h: History, t: datetime, hours: int) -> None:
    # h itself has events after t; a different future (every open deal won) must not matter
    later = (t + timedelta(hours=hours)).isoformat()
    extra: list[dict[str, Any]] = [
        {"type": "stage_changed", "opportunity_id": oid, "at": later, "stage": "closed-won"}
        for oid in h.until(t).as_of(t).open()
    ]
    extra.append({"type": "opened", "opportunity_id": "late", "at": later, "stage":
                  "closed-won", "amount": "5", "currency": "EUR", "owner": "ann"})  # fmt: skip
    bigger = History.from_records(h.until(t).to_records() + extra, scheme=h.scheme)
    c = QuotaAttainment(quotas={"ann": 1000}, teams=TEAM)
    assert c.compute(bigger, as_of=t) == c.compute(h, as_of=t)


# -- bad arguments --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"quotas": {("ann", "Q3-2024"): 10}}, "quotas"),
        ({"quotas": {("ann", "2024-07"): 10}}, "quotas"),  # a month label for quarters
        ({"quotas": {"ann": -5}}, "quotas"),
        ({"quotas": {"ann": "lots"}}, "quotas"),
        ({"quotas": {7: 10}}, "quotas"),
        ({"quotas": "ann"}, "quotas"),
        ({"quotas": [Quota(who="a", amount=1), Quota(who="a", amount=2)]}, "quotas"),
        ({"team_quotas": {"west": 10}}, "team_quotas"),
        ({"period": "fortnight"}, "period"),
        ({"teams": ["east"]}, "teams"),
        ({"teams": {"east": "ann"}}, "teams"),
        ({"teams": {"east": ("ann", "")}}, "teams"),
        ({"currency": "euro"}, "currency"),
        ({"categories": "default"}, "categories"),
        ({"overrides": {"b": "won"}}, "overrides"),
        ({"tz": "UTC"}, "tz"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(ArgumentError) as err:
        QuotaAttainment(**kwargs)
    assert err.value.argument == argument


def test_unknown_owner_in_a_team_is_fine() -> None:
    r = QuotaAttainment(teams={"ghosts": ("nobody",)}).compute(history(), as_of=AS_OF)
    ghosts = r.row("ghosts", "2024-Q3", level="team")
    assert (ghosts.won, ghosts.pipeline, ghosts.member_quota) == (D(0), D(0), None)


def test_category_map_of_another_scheme_is_refused() -> None:
    c = QuotaAttainment(categories=CategoryMap.for_scheme(schemes.get("vtiger-lead-funnel")))
    with pytest.raises(ArgumentError) as err:
        c.compute(history(), as_of=AS_OF)
    assert err.value.argument == "categories"


def test_merge_refuses_different_quotas_or_as_of() -> None:
    h = history()
    a = calc().compute(h, as_of=AS_OF)
    for other in (
        calc(quotas={"ann": 1}).compute(h, as_of=AS_OF),
        calc().compute(h, as_of="2024-09-29T00:00:00Z"),
        calc(tz=timezone(timedelta(hours=2))).compute(h, as_of=AS_OF),
    ):
        with pytest.raises(ArgumentError) as err:
            a.merge(other)
        assert err.value.argument == "other"
