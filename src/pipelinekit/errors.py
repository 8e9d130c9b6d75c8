"""The error hierarchy: every error pipelinekit raises is a :class:`PipelineError`.

Each class also subclasses the builtin it refines (``ValueError``), so callers that
already catch ``ValueError`` keep working, and carries structured attributes, not
only a message, so an app can show a person what went wrong and where.

Example:
    >>> from pipelinekit.errors import RecordError, PipelineError
    >>> err = RecordError("amount must not be negative", index=3, opportunity_id="o-1",
    ...                   field="amount")
    >>> isinstance(err, PipelineError) and isinstance(err, ValueError)
    True
    >>> print(err)
    record 3 (opportunity 'o-1'), field 'amount': amount must not be negative
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ArgumentError",
    "CurrencyError",
    "DuplicateEventError",
    "PipelineError",
    "RecordError",
    "SchemeError",
    "TransitionError",
]


class PipelineError(Exception):
    """Base class of every error raised by pipelinekit."""


class SchemeError(PipelineError, ValueError):
    """A stage scheme is not valid; ``problems`` lists every offender at once.

    Example:
        >>> err = SchemeError(["duplicate stage key 'won'", "no open stage"])
        >>> err.problems
        ("duplicate stage key 'won'", 'no open stage')
    """

    def __init__(self, problems: Sequence[str], *, scheme: str | None = None) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        self.scheme = scheme
        where = f"stage scheme {scheme!r}" if scheme else "stage scheme"
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{where} is invalid:\n{lines}")

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_scheme_error, (self.problems, self.scheme))


def _rebuild_scheme_error(problems: tuple[str, ...], scheme: str | None) -> SchemeError:
    return SchemeError(problems, scheme=scheme)


class RecordError(PipelineError, ValueError):
    """One input record (or event) is bad.

    Attributes:
        reason: what is wrong and what was expected.
        index: position of the record in the input, when known.
        event_id: the record's ``event_id``, when it has one.
        opportunity_id: the opportunity the record belongs to, when known.
        field: the offending field, when one field is to blame.
    """

    def __init__(
        self,
        reason: str,
        *,
        index: int | None = None,
        event_id: str | None = None,
        opportunity_id: str | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = reason
        self.index = index
        self.event_id = event_id
        self.opportunity_id = opportunity_id
        self.field = field
        super().__init__(self._message())

    def _where(self) -> str:
        parts = []
        head = "record" if self.index is None else f"record {self.index}"
        ids = []
        if self.event_id is not None:
            ids.append(f"event_id {self.event_id!r}")
        if self.opportunity_id is not None:
            ids.append(f"opportunity {self.opportunity_id!r}")
        parts.append(head + (f" ({', '.join(ids)})" if ids else ""))
        if self.field is not None:
            parts.append(f"field {self.field!r}")
        return ", ".join(parts)

    def _message(self) -> str:
        return f"{self._where()}: {self.reason}"

    def located(self, *, index: int | None) -> RecordError:
        """Return a copy of this error that names the record's input position.

        Example:
            >>> RecordError("bad", opportunity_id="o-1").located(index=7).index
            7
        """
        clone = self.__class__.__new__(self.__class__)
        clone.__dict__.update(self.__dict__)
        clone.index = index
        Exception.__init__(clone, clone._message())
        return clone

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_record_error, (self.__class__, self.__dict__.copy()))


def _rebuild_record_error(cls: type[RecordError], state: dict[str, object]) -> RecordError:
    err = cls.__new__(cls)
    err.__dict__.update(state)
    Exception.__init__(err, err._message())
    return err


class DuplicateEventError(RecordError):
    """Two records share an ``event_id`` but say different things."""


class TransitionError(RecordError):
    """An event is not a legal move for its opportunity under the scheme.

    Attributes:
        from_stage: the opportunity's stage before the event (None if never opened).
        to_stage: the stage the event asks for, when it names one.
        rule: a short name of the rule broken, e.g. ``"forward"``, ``"not-opened"``.
    """

    def __init__(
        self,
        reason: str,
        *,
        rule: str,
        from_stage: str | None = None,
        to_stage: str | None = None,
        index: int | None = None,
        event_id: str | None = None,
        opportunity_id: str | None = None,
        field: str | None = "stage",
    ) -> None:
        self.rule = rule
        self.from_stage = from_stage
        self.to_stage = to_stage
        super().__init__(
            reason,
            index=index,
            event_id=event_id,
            opportunity_id=opportunity_id,
            field=field,
        )


class CurrencyError(PipelineError, ValueError):
    """Amounts in different currencies were to be added without exchange rates."""


class ArgumentError(PipelineError, ValueError):
    """A calculator or helper was called with a bad argument; ``argument`` names it.

    Example:
        >>> print(ArgumentError("window", "ends before it starts"))
        argument 'window': ends before it starts
    """

    def __init__(self, argument: str, reason: str) -> None:
        self.argument = argument
        self.reason = reason
        super().__init__(f"argument {argument!r}: {reason}")

    def __reduce__(self) -> tuple[object, ...]:
        return (self.__class__, (self.argument, self.reason))
