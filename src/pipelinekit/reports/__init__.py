"""Descriptive calculators: what the pipeline looks like and how it moved.

Every report is a calculator (``compute(history, *, as_of)``) that sees only
``history.until(as_of)`` and returns a frozen :class:`~pipelinekit.results.Result`.
"""

__all__: list[str] = []
