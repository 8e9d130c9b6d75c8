"""The example test file in docs/testing-your-scheme.md exists, matches and passes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "testing-your-scheme.md"
EXAMPLE = ROOT / "examples" / "test_my_scheme.py"


def test_the_docs_show_exactly_the_example_file() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert EXAMPLE.read_text(encoding="utf-8") in blocks


def test_the_example_test_file_passes_under_pytest() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "5 passed" in done.stdout
