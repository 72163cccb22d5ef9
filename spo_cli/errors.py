"""Errors that map onto the CLI's exit codes: 0 ok, 1 failure, 2 bad input or usage."""

from __future__ import annotations


class SpoError(Exception):
    """A failure that is not the input's fault (exit code 1)."""

    exit_code = 1


class BadInput(SpoError):
    """Input that cannot be used: names the file, the line (1-based, if known) and the problem.

    Exit code 2. Raised only at record boundaries, so everything read before it is complete.
    """

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        self.message = message
        self.path = path
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path or "<input>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.message}"


class RecordError(ValueError):
    """A record that breaks its schema; `field` names the offending field (None: the whole record)."""

    def __init__(self, field: str | None, reason: str):
        self.field = field
        self.reason = reason
        super().__init__(f"field '{field}': {reason}" if field else reason)


class Unusable(RecordError):
    """A well-formed record that cannot be used, e.g. a problem without usable tests: readers
    skip it and count it (and say so on stderr), never drop it silently, never stop on it."""

    def __init__(self, reason: str):
        super().__init__(None, reason)
