"""Shared pytest configuration: hypothesis profiles, and the real-data examples' path.

``HYPOTHESIS_PROFILE=mutation`` (set by ``make mutation``) runs every property test with few,
derandomized examples, so that each of the thousands of mutant runs stays short and gives
the same verdict every time. Tests that pin their own ``max_examples`` are capped too.
Without the variable the default profile applies and nothing changes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

MUTATION_MAX_EXAMPLES = 10

settings.register_profile(
    "mutation",
    max_examples=MUTATION_MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

_PROFILE = os.environ.get("HYPOTHESIS_PROFILE")
if _PROFILE:
    settings.load_profile(_PROFILE)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under the mutation profile, cap the examples of tests that set their own count."""
    if _PROFILE != "mutation":
        return
    for item in items:
        test = getattr(getattr(item, "obj", None), "__func__", getattr(item, "obj", None))
        # hypothesis keeps a test's own @settings here and reads it when the test runs
        own = getattr(test, "_hypothesis_internal_use_settings", None)
        if isinstance(own, settings) and own.max_examples > MUTATION_MAX_EXAMPLES:
            test._hypothesis_internal_use_settings = settings(
                own,
                max_examples=MUTATION_MAX_EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
            )


@pytest.fixture(scope="module")
def examples_on_path() -> Iterator[None]:
    """``examples/data`` on ``sys.path`` while a real-data test module runs."""
    examples = str(Path(__file__).resolve().parent.parent / "examples" / "data")
    sys.path.insert(0, examples)
    yield
    sys.path.remove(examples)
