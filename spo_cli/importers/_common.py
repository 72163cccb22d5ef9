"""What the importers share: JSON-in-a-string fields, test lists, the meta block."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from spo_cli.errors import RecordError


def json_field(row: dict, field: str) -> Any:
    """A field that holds JSON text (TACO/APPS input_output and solutions, LiveCodeBench tests),
    decoded; None when absent or blank. A field that is already decoded passes through."""
    v = row.get(field)
    if isinstance(v, (str, bytes)):
        if not v.strip():
            return None
        try:
            return orjson.loads(v)
        except orjson.JSONDecodeError as e:
            raise RecordError(field, f"is not valid JSON ({e})") from None
    return v


def as_text(v: Any) -> str:
    """A test input or output as text: TACO and APPS sometimes store one as a list of lines."""
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        return "\n".join(str(x) for x in v)
    return str(v)


def meta(fmt: str, row: dict, consumed: Iterable[str], **extra: Any) -> dict:
    """The meta block: the importer's name, then every field of the row it did not map."""
    skip = set(consumed)
    return {"format": fmt, **{k: v for k, v in row.items() if k not in skip}, **extra}


def with_starter_code(text: str, starter: Any) -> str:
    """The statement followed by the code the answer must complete (a class or function
    signature), as APPS, TACO and LiveCodeBench show it to a model; a call-based problem cannot
    be answered without it."""
    if isinstance(starter, str) and starter.strip():
        return f"{text.rstrip()}\n\n{starter.rstrip()}\n"
    return text


_STR = {str}


def string_list(items: Any, field: str, what: str) -> list[str]:
    """A list of strings, or a RecordError naming the field and the first item that is not one.
    (The check runs in C: these lists hold a dataset's tests and solutions, thousands a row.)"""
    if type(items) is list and set(map(type, items)) <= _STR:
        return items
    if items is None:
        return []
    if not isinstance(items, list):
        raise RecordError(field, f"{what} must be a list, got {type(items).__name__}")
    for i, s in enumerate(items):
        if not isinstance(s, str):
            raise RecordError(field, f"{what} item {i} must be a string, got {type(s).__name__}")
    return items
