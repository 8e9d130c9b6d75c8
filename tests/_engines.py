"""Choosing the engine in a test: the reference one or the columnar one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from pipelinekit.engine import ENGINE_VARIABLE


@contextmanager
def reference_engine(on: bool = True) -> Iterator[None]:
    """Force the reference engine (``on``) or the columnar one (whatever the size)."""
    before = os.environ.get(ENGINE_VARIABLE)
    os.environ[ENGINE_VARIABLE] = "reference" if on else "columnar"
    try:
        yield
    finally:
        if before is None:
            del os.environ[ENGINE_VARIABLE]
        else:
            os.environ[ENGINE_VARIABLE] = before
