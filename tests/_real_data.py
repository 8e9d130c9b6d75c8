"""Shared by the real-data tests: the examples on ``sys.path``, the data, running an example.

The data sets are not in the repository: they are read from ``shared/data`` beside the
checkout (or ``$PIPELINEKIT_DATA``), found the way the examples find them (``_common``), and
a test skips with a clear message when its data set is absent. A test module puts
``examples/data`` on the path while it runs with
``pytestmark = pytest.mark.usefixtures("examples_on_path")`` (the fixture is in
``conftest.py``).
"""

from __future__ import annotations

import contextlib
import importlib
import io
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


def example(name: str) -> ModuleType:
    """An example module of ``examples/data`` (or its ``_common`` helpers)."""
    return importlib.import_module(name)


def data(folder: str, *files: str) -> Path:
    """``<data root>/<folder>``, or skip the test when it (or one of ``files``) is absent."""
    common = example("_common")
    root = common.data_root()
    if root is None or not all((root / folder / f).is_file() for f in files):
        pytest.skip(
            f"real data set {folder!r} not found: put it in shared/data/{folder}/ beside the "
            f"checkout, or set {common.DATA_ENV} to the folder holding {folder}/"
        )
    return Path(root) / folder


def run_example(name: str, folder: str, files: tuple[str, ...]) -> dict[str, Any]:
    """Run an example's ``main`` (its output captured) and return the figures it returns;
    the output must account for what lenient mode set aside."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        figures: dict[str, Any] = example(name).main(data(folder, *files))
    assert "set aside" in out.getvalue()
    return figures
