"""The walkthrough notebook runs top to bottom in a fresh kernel, so it can never rot.

The kernel is this test's own interpreter (``sys.executable``), whatever kernelspecs the
machine has installed, so the notebook runs against the code under test.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("matplotlib")
nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager  # noqa: E402
from jupyter_client.manager import KernelManager  # noqa: E402
from traitlets import default  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOK = EXAMPLES / "walkthrough.ipynb"


class ThisInterpreter(KernelSpecManager):  # type: ignore[misc]
    """Every kernel name resolves to an IPython kernel on ``sys.executable``."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return KernelSpec(
            argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            display_name=f"Python ({sys.executable})",
            language="python",
            resource_dir=str(EXAMPLES),
        )


class ThisInterpreterManager(KernelManager):  # type: ignore[misc]
    """A kernel manager that looks kernels up in :class:`ThisInterpreter` only.

    nbclient creates, owns and shuts down the manager (and its sockets) itself.
    """

    @default("kernel_spec_manager")
    def _this_interpreter(self) -> KernelSpecManager:
        return ThisInterpreter()


def stream(cells: list[Any], name: str) -> str:
    return "".join(
        output["text"]
        for cell in cells
        for output in cell.get("outputs", [])
        if output["output_type"] == "stream" and output["name"] == name
    )


@pytest.fixture(scope="module")
def executed() -> tuple[Any, float]:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # one extra cell, in the copy only: which interpreter ran the notebook
    notebook.cells.append(nbformat.v4.new_code_cell("import sys; print('kernel:', sys.executable)"))
    client = nbclient.NotebookClient(
        notebook,
        kernel_name="python3",
        kernel_manager_class=ThisInterpreterManager,
        timeout=60,
        allow_errors=False,  # any cell error fails the test with the cell and traceback
        resources={"metadata": {"path": str(EXAMPLES)}},
    )
    started = time.perf_counter()
    client.execute()
    return notebook, time.perf_counter() - started


def test_notebook_is_stored_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_notebook_runs_in_this_interpreter_without_errors_in_under_a_minute(
    executed: tuple[Any, float],
) -> None:
    notebook, seconds = executed
    assert seconds < 60
    out = stream(notebook.cells, "stdout")
    assert f"kernel: {sys.executable}\n" in out
    assert stream(notebook.cells, "stderr") == ""


def test_notebook_prints_the_forecast_and_a_balanced_bridge(executed: tuple[Any, float]) -> None:
    out = stream(executed[0].cells, "stdout")
    # the same figures as the OutcomeDistribution doctest on this demo history
    assert "2024-10: P10 9,700  P50 50,400  P90 79,300" in out
    assert "balances: True" in out
    assert "historical WAPE 0.52  Brier 0.093" in out
    assert "'salesforce'" in out


def test_notebook_shows_each_picture_as_a_png(executed: tuple[Any, float]) -> None:
    images = [
        output
        for cell in executed[0].cells
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]
    assert len(images) == 5  # funnel, time in stage, fan, calibration, movement waterfall
