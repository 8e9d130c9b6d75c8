"""docs/from-your-crm.md: the Salesforce recipe runs on the public export and says what the
page says (the loading in at most ten lines); skipped with a message when the data is absent.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from pathlib import Path

import pytest
from _real_data import data

pytestmark = pytest.mark.usefixtures("examples_on_path")
DOC = Path(__file__).resolve().parent.parent / "docs" / "from-your-crm.md"


def _blocks() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    return [b for b in re.findall(r"```python\n(.*?)```", text, re.DOTALL) if ">>>" not in b]


def test_the_loading_takes_at_most_ten_lines() -> None:
    loading = [line for line in _blocks()[0].splitlines() if line.strip()]
    assert len(loading) <= 10


def test_the_salesforce_recipe_runs_and_prints_what_the_page_says() -> None:
    folder = data("preppin-sf-opps", "Opportunity.csv", "Opportunity History.csv")
    loading, reports = _blocks()[:2]
    loading = loading.replace('"shared/data/preppin-sf-opps/"', repr(f"{folder}/"))
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("error")  # closed_flags="ignore": no warning to hide
        exec(compile(loading + reports, str(DOC), "exec"), {})
    text = out.getvalue()
    assert "803 records: 656 applied, 0 duplicates, 147 rejected" in text
    assert "137 of 219 opportunities: StageName disagrees with IsClosed/IsWon" in text
    for title in ("Pipeline by stage", "weighted forecast", "Stalled deals", "historical"):
        assert title in text
    assert re.search(r"forward\s+stage\s+104", text) and re.search(r"not-opened\s+\S+\s+43", text)
