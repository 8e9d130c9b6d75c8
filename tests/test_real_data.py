"""The real-data examples, checked against figures computed independently with pandas.

The data sets are not in the repository: they are read from ``shared/data`` beside the
checkout (or ``$PIPELINEKIT_DATA``), found the way the examples find them; each test skips
with a clear message when its data set is absent. Every expected figure below is computed
here with plain pandas from the CSV files, never copied from the library's output.
"""

from __future__ import annotations

import math
from decimal import Decimal

import pandas as pd
import pytest
from _real_data import data as _data
from _real_data import example as _example
from _real_data import run_example

pytestmark = pytest.mark.usefixtures("examples_on_path")


def test_maven_crm_against_pandas() -> None:
    figures = run_example("maven_crm", "maven-crm", ("sales_pipeline.csv", "products.csv"))
    df = pd.read_csv(_data("maven-crm") / "sales_pipeline.csv")
    stage = df["deal_stage"]
    won, lost = int((stage == "Won").sum()), int((stage == "Lost").sum())
    # open = deals neither won nor lost that have a date (Prospecting rows have none)
    dated_open = int((~stage.isin(["Won", "Lost"]) & df["engage_date"].notna()).sum())
    assert (figures["won"], figures["lost"], figures["open"]) == (won, lost, dated_open)
    assert figures["win_rate"] == pytest.approx(won / (won + lost))
    total = df.loc[stage == "Won", "close_value"].sum()
    assert figures["won_amount"] == Decimal(str(int(total)))
    w = df[stage == "Won"]
    days = (pd.to_datetime(w["close_date"]) - pd.to_datetime(w["engage_date"])).dt.days
    assert figures["won_cycle_median_days"] == pytest.approx(float(days.median()))
    # what lenient mode set aside: exactly the rows without an engage date
    assert sum(figures["set_aside"].values()) == int(df["engage_date"].isna().sum())


def test_salesforce_export_against_published_timeline() -> None:
    files = ("Opportunity.csv", "Opportunity History.csv", "Cleaned Salesforce Data.csv")
    figures = run_example("salesforce_export", "preppin-sf-opps", files)
    folder = _data("preppin-sf-opps")
    opp = pd.read_csv(folder / "Opportunity.csv", encoding="utf-8-sig")
    hist = pd.read_csv(folder / "Opportunity History.csv", encoding="utf-8-sig")
    timeline = pd.read_csv(folder / "Cleaned Salesforce Data.csv", encoding="utf-8-sig")
    key = _example("salesforce_export").STAGE_KEYS

    timeline["day"] = pd.to_datetime(timeline["Date"], format="%d/%m/%Y")
    stages = timeline[~timeline["Stage"].isin(["Opened", "ExpectedCloseDate"])]
    by_date = stages.sort_values(["day", "SortOrder"]).groupby("OppID").tail(1)
    furthest = stages.sort_values("SortOrder").groupby("OppID").tail(1).set_index("OppID")
    last = by_date.set_index("OppID")["Stage"]

    # the any-order replay ends where the published timeline ends, for every opportunity
    expected_any = {key[s]: n for s, n in last.value_counts().items()}
    assert figures["final_stages_any_order"] == expected_any
    # the preset replay (forward only) ends at Opportunity.StageName ...
    expected_preset = {key[s]: n for s, n in opp["StageName"].value_counts().items()}
    assert figures["final_stages"] == expected_preset
    assert figures["agree_with_stage_name"] == len(opp)
    # ... which agrees with the timeline where the timeline never steps back (comparable)
    comparable = last[last == furthest["Stage"].reindex(last.index)]
    assert 0 < len(comparable) < len(last)
    assert all(
        key[opp.set_index("Id").loc[i, "StageName"]] == key[s] for i, s in comparable.items()
    )
    # open at the end = the timeline's ExpectedCloseDate rows (one per open opportunity)
    assert figures["open"] == int((timeline["Stage"] == "ExpectedCloseDate").sum())
    assert figures["won"] == int((opp["StageName"] == "Closed Won").sum())
    # rows dated before their opportunity's CreatedDate are the "not-opened" set-asides
    hist["day"] = pd.to_datetime(hist["CreatedDate"], format="%d/%m/%Y")
    created = pd.to_datetime(opp.set_index("Id")["CreatedDate"], format="%d/%m/%Y")
    early = int((hist["day"] < hist["OppID"].map(created)).sum())
    not_opened = [n for r, n in figures["set_aside_any_order"].items() if r.startswith("not-")]
    assert not_opened == [early]
    assert sum(figures["set_aside_any_order"].values()) == early


def test_sfdc_devorg_probabilities_are_the_preset_weights() -> None:
    files = ("Opportunity.csv", "OpportunityHistory.csv")
    figures = run_example("sfdc_devorg", "sfdc-devorg-sample", files)
    folder = _data("sfdc-devorg-sample")
    opp = pd.read_csv(folder / "Opportunity.csv")
    hist = pd.read_csv(folder / "OpportunityHistory.csv")
    scheme = _example("sfdc_devorg").PRESET
    weight = {s.label: s.weight for s in scheme.stages}
    # Salesforce's probability per stage, over both files, is one value: the preset weight
    both = pd.concat([opp[["StageName", "Probability"]], hist[["StageName", "Probability"]]])
    per_stage = both.groupby("StageName")["Probability"].unique()
    for stage, probabilities in per_stage.items():
        assert [Decimal(int(p)) for p in probabilities] == [weight[stage]]
    # and per opportunity, through the library's replay
    assert figures["probabilities"] == {
        i: Decimal(int(p)) for i, p in zip(opp["Id"], opp["Probability"], strict=True)
    }
    assert figures["probability_matches"] == figures["expected_revenue_matches"] == len(opp)
    # ExpectedRevenue = Amount x Probability / 100 holds in the file itself
    priced = opp[opp["Amount"].notna()]
    assert (priced["Amount"] * priced["Probability"] / 100 == priced["ExpectedRevenue"]).all()
    open_rows = priced[~priced["IsClosed"]]
    assert figures["open_weighted"] == Decimal(str(int(open_rows["ExpectedRevenue"].sum())))
    assert figures["won"] == int(opp["IsWon"].sum())
    assert figures["lost"] == int((opp["IsClosed"] & ~opp["IsWon"]).sum())
    # the preset refuses Closed Won -> Closed Lost: those history rows are what it set aside
    h = hist.assign(at=pd.to_datetime(hist["CreatedDate"], format="%m/%d/%y %I:%M %p"))
    h = h.sort_values("at")
    after_won = h.groupby("OpportunityId")["StageName"].transform(
        lambda s: (s == "Closed Won").cumsum().shift(fill_value=0) > 0
    )
    assert figures["set_aside_by_preset"] == {
        "reopen: closed-won -> closed-lost": int(after_won.sum())
    }
    assert figures["set_aside"] == {}


def test_olist_funnel_against_pandas() -> None:
    files = ("olist_marketing_qualified_leads_dataset.csv", "olist_closed_deals_dataset.csv")
    figures = run_example("olist_funnel", "olist-marketing-funnel", files)
    folder = _data("olist-marketing-funnel")
    leads = pd.read_csv(folder / files[0])
    deals = pd.read_csv(folder / files[1])
    joined = deals.merge(leads, on="mql_id", how="inner")
    elapsed = pd.to_datetime(joined["won_date"]) - pd.to_datetime(joined["first_contact_date"])
    valid = elapsed[elapsed >= pd.Timedelta(0)]  # a win dated before first contact is set aside
    won = len(valid)
    assert figures["leads"] == len(leads)
    assert figures["won"] == won == len(deals) - 1
    assert figures["open"] == len(deals) - won
    assert figures["lost"] == len(leads) - len(deals)
    assert figures["late_wins"] == int((valid > pd.Timedelta(days=180)).sum())
    rate = won / (len(leads) - (len(deals) - won))
    assert figures["lead_to_win_rate"] == pytest.approx(rate)
    assert figures["leads_needed"] == math.ceil(100 / rate - 1e-12)
    median_days = valid.dt.total_seconds().median() / 86_400
    assert figures["won_cycle_median_days"] == pytest.approx(median_days)
