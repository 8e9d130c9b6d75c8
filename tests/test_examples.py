"""The examples run as tests, so they can never rot."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_quickstart_prints_states_and_the_weighted_total(
    capsys: pytest.CaptureFixture[str],
) -> None:
    runpy.run_path(str(EXAMPLES / "quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "globex-1    negotiation      40000    60%     24000  bob" in out
    assert "initech-1   lost" in out
    # 12000 x 50% + 40000 x 60% (override) = 6000 + 24000; the lost deal adds nothing
    assert "weighted total: 30000 EUR" in out
    assert "open pipeline: 52000 EUR in 2 deals" in out


def test_readme_example_prints_what_the_readme_says(capsys: pytest.CaptureFixture[str]) -> None:
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    blocks = [part.split("```", 1)[0] for part in readme.split("```python\n")[1:]]
    assert len(blocks) >= 2
    for code in blocks:
        promised = [line[2:] for line in code.splitlines() if line.startswith("# ")]
        exec(compile(code, "README.md", "exec"), {})
        assert capsys.readouterr().out.splitlines() == promised
