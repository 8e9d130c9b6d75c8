"""The pipeline-by-stage, win/loss and backtest figures of two real-data examples, checked
against plain pandas: the Salesforce export (``salesforce_export``) and Olist's marketing
funnel (``olist_funnel``).

The data sets are not in the repository (see ``tests/test_real_data.py``): each test skips
with a clear message when its data set is absent. Every expected figure is computed here with
pandas from the CSV files - for Salesforce, from ``Opportunity.csv`` and the challenge's
published timeline ``Cleaned Salesforce Data.csv`` - never copied from the library's output.
Each example runs once per module (the Olist backtest takes a few seconds).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from _real_data import data as _data
from _real_data import example as _example
from _real_data import run_example

pytestmark = pytest.mark.usefixtures("examples_on_path")

SF_FILES = ("Opportunity.csv", "Opportunity History.csv", "Cleaned Salesforce Data.csv")
OLIST_FILES = ("olist_marketing_qualified_leads_dataset.csv", "olist_closed_deals_dataset.csv")

SALESFORCE_PROBABILITY = {
    "Prospecting": 10,
    "Qualification": 10,
    "Needs Analysis": 20,
    "Value Proposition": 50,
    "Id. Decision Makers": 60,
    "Perception Analysis": 70,
    "Proposal/Price Quote": 75,
    "Negotiation/Review": 90,
}
"""Salesforce's default probability of each open stage (Setup > Opportunity Stages)."""


def _months(first: str, last: str) -> list[str]:
    return [str(p) for p in pd.period_range(first, last, freq="M")]


# --- the Salesforce export -------------------------------------------------------------


@pytest.fixture(scope="module")
def salesforce(examples_on_path: None) -> dict[str, Any]:
    return run_example("salesforce_export", "preppin-sf-opps", SF_FILES)


@pytest.fixture(scope="module")
def sf_opportunities(examples_on_path: None) -> pd.DataFrame:
    folder = _data("preppin-sf-opps", *SF_FILES)
    return pd.read_csv(folder / "Opportunity.csv", encoding="utf-8-sig")


@pytest.fixture(scope="module")
def sf_timeline(examples_on_path: None) -> pd.DataFrame:
    folder = _data("preppin-sf-opps", *SF_FILES)
    timeline = pd.read_csv(folder / "Cleaned Salesforce Data.csv", encoding="utf-8-sig")
    timeline["day"] = pd.to_datetime(timeline["Date"], format="%d/%m/%Y")
    return timeline


def test_salesforce_pipeline_by_stage(
    salesforce: dict[str, Any], sf_opportunities: pd.DataFrame
) -> None:
    opp = sf_opportunities
    key = _example("salesforce_export").STAGE_KEYS
    # the preset replay ends at Opportunity.StageName (tests/test_real_data.py), so the
    # amount per stage at the end is the Amount summed per StageName
    per_stage = opp.groupby("StageName")["Amount"].sum()
    expected = {key[s]: Decimal(str(int(a))) for s, a in per_stage.items()}
    assert salesforce["stage_amounts"] == expected
    open_rows = opp[~opp["StageName"].isin(["Closed Won", "Closed Lost"])]
    assert salesforce["open_amount"] == Decimal(str(int(open_rows["Amount"].sum())))
    weighted = (open_rows["Amount"] * open_rows["StageName"].map(SALESFORCE_PROBABILITY)).sum()
    assert salesforce["open_weighted"] == Decimal(str(int(weighted))) / 100


def test_salesforce_win_loss_by_owner(
    salesforce: dict[str, Any], sf_opportunities: pd.DataFrame
) -> None:
    opp = sf_opportunities
    closed = opp[opp["StageName"].isin(["Closed Won", "Closed Lost"])]
    counts = closed.groupby(["OwnerId", "StageName"]).size().unstack(fill_value=0)
    expected = {
        str(owner): (int(row.get("Closed Won", 0)), int(row.get("Closed Lost", 0)))
        for owner, row in counts.iterrows()
    }
    assert salesforce["won_lost_by_owner"] == expected
    won = opp[opp["StageName"] == "Closed Won"]
    assert salesforce["won_amount"] == Decimal(str(int(won["Amount"].sum())))


def test_salesforce_closes_on_the_published_timeline(
    salesforce: dict[str, Any], sf_timeline: pd.DataFrame
) -> None:
    # every closed deal closes on the day the published timeline gives (including the 47
    # whose history is only their closing row: they are opened in prospecting, not closed)
    closes = sf_timeline[sf_timeline["Stage"].isin(["Closed Won", "Closed Lost"])]
    expected = {oid: d.date() for oid, d in zip(closes["OppID"], closes["day"], strict=True)}
    assert salesforce["closed_on"] == expected


def test_salesforce_backtest_actuals(
    salesforce: dict[str, Any], sf_opportunities: pd.DataFrame, sf_timeline: pd.DataFrame
) -> None:
    # actual = revenue won per calendar month, from the timeline's Closed Won dates
    won = sf_timeline[sf_timeline["Stage"] == "Closed Won"]
    amount = sf_opportunities.set_index("Id")["Amount"]
    by_month = (
        won.assign(amount=won["OppID"].map(amount))
        .groupby(won["day"].dt.to_period("M").astype(str))["amount"]
        .sum()
    )
    months = _months("2022-06", "2022-11")
    expected = {m: Decimal(str(int(by_month.get(m, 0)))) for m in months}
    assert salesforce["backtest_actual"] == expected
    assert salesforce["backtest_points"] == 3 * len(months)  # weighted, historical, projection
    for accuracy in salesforce["backtest"].values():
        assert accuracy.points == len(months)


# --- Olist's marketing funnel ----------------------------------------------------------


@pytest.fixture(scope="module")
def olist(examples_on_path: None) -> dict[str, Any]:
    return run_example("olist_funnel", "olist-marketing-funnel", OLIST_FILES)


@pytest.fixture(scope="module")
def olist_leads(examples_on_path: None) -> pd.DataFrame:
    """One row per lead: first contact, origin, the deal's win time, and the 180-day mark."""
    folder = _data("olist-marketing-funnel", *OLIST_FILES)
    leads = pd.read_csv(folder / OLIST_FILES[0])
    deals = pd.read_csv(folder / OLIST_FILES[1])
    df = leads.merge(deals[["mql_id", "won_date"]], on="mql_id", how="left")
    df["contact"] = pd.to_datetime(df["first_contact_date"])
    df["won_at"] = pd.to_datetime(df["won_date"])
    df["mark"] = df["contact"] + pd.Timedelta(days=180)
    # a win dated before its lead's first contact cannot be recorded (set aside)
    df["valid_win"] = df["won_at"].notna() & (df["won_at"] >= df["contact"])
    # a lost record exists when the lead was not won by the 180-day mark
    df["lost_record"] = df["won_at"].isna() | (df["won_at"] > df["mark"])
    return df


def test_olist_leads_by_stage(olist: dict[str, Any], olist_leads: pd.DataFrame) -> None:
    df = olist_leads
    won = int(df["valid_win"].sum())
    # the data set's last mark (May 2018 + 180 days) is before the example's as_of
    lost = int((df["lost_record"] & ~df["valid_win"]).sum())
    assert olist["stage_counts"] == {"mql": len(df) - won - lost, "won": won, "lost": lost}


def test_olist_win_loss_by_origin(olist: dict[str, Any], olist_leads: pd.DataFrame) -> None:
    expected: dict[str | None, tuple[int, int]] = {}
    for origin, group in olist_leads.groupby("origin", dropna=False):
        name = None if pd.isna(origin) else str(origin)
        won = int(group["valid_win"].sum())
        lost = int((group["lost_record"] & ~group["valid_win"]).sum())
        expected[name] = (won, lost)
    assert olist["won_lost_by_source"] == expected


def test_olist_backtest_actuals_and_known_rate(
    olist: dict[str, Any], olist_leads: pd.DataFrame
) -> None:
    df = olist_leads
    wins = df[df["valid_win"]]
    # actual = sellers signed per calendar month (São Paulo time, as the CSV is)
    per_month = wins["won_at"].dt.to_period("M").astype(str).value_counts()
    months = _months("2018-01", "2018-11")
    assert olist["backtest_actual"] == {m: Decimal(int(per_month.get(m, 0))) for m in months}
    assert olist["backtest_points"] == 2 * len(months)  # historical and age-conditioned
    # the win rate a forecaster can learn at each as_of: only what was known then
    for month in months:
        as_of = pd.Timestamp(f"{month}-01")
        won = df["valid_win"] & (df["won_at"] <= as_of)
        lost = ~won & df["lost_record"] & (df["mark"] <= as_of)
        rate = int(won.sum()) / int(won.sum() + lost.sum())
        assert olist["backtest_rate_known"][month] == pytest.approx(rate)
    # and never the final rate: losses are known 180 days after contact, wins at once
    final = int(df["valid_win"].sum()) / int((df["valid_win"] | df["lost_record"]).sum())
    assert all(r > final for r in olist["backtest_rate_known"].values())
