"""Command options generated from a config dataclass: one definition of each option's name, type,
default and help.

    @dataclass
    class TrainConfig:
        steps: int = 100
        '''Optimiser steps.'''          <- the attribute docstring is the option's --help

    options(TrainConfig)                -> typer parameters (--steps, ...) for a command signature
    take(TrainConfig, kwargs)           -> TrainConfig(...) from the command's keyword arguments
    changed(AsyncConfig(...))           -> the options given a value other than their default

Types: str, int, float, `X | None` (default None), bool (a --flag/--no-flag pair) and list[str]
(a repeatable option).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from typing import Any, List, Optional

import typer


def field_docs(cls: type) -> dict[str, str]:
    """The attribute docstring under each field of a dataclass, whitespace collapsed."""
    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0].body
    return {a.target.id: " ".join(b.value.value.split()) for a, b in zip(body, body[1:], strict=False)
            if isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name)
            and isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant) and isinstance(b.value.value, str)}


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]


def options(cls: type, *, names: dict[str, list[str]] | None = None) -> list[inspect.Parameter]:
    """A keyword-only typer parameter per field of `cls` (names: other spellings, e.g. short ones)."""
    docs, hints = field_docs(cls), typing.get_type_hints(cls)
    params = []
    for f in dataclasses.fields(cls):
        tp, default, help_ = hints[f.name], _default(f), docs.get(f.name, "")
        spelled = (names or {}).get(f.name, [flag(f.name)])
        if typing.get_origin(tp) is list:
            ann, opt = Optional[List[typing.get_args(tp)[0]]], typer.Option(None, *spelled, help=help_)
        elif tp is bool:
            ann, opt = bool, typer.Option(default, f"{flag(f.name)}/--no-{flag(f.name)[2:]}", help=help_)
        else:
            if typing.get_origin(tp) in (typing.Union, types.UnionType):
                tp = Optional[next(a for a in typing.get_args(tp) if a is not type(None))]
            ann, opt = tp, typer.Option(default, *spelled, help=help_)
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=ann))
    return params


def take(cls: type, kwargs: dict) -> Any:
    """Remove the fields of `cls` from a command's kwargs and build it (an unused list: its default)."""
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in kwargs:
            v = kwargs.pop(f.name)
            values[f.name] = (list(v) if v else _default(f)) if f.default is dataclasses.MISSING else v
    return cls(**values)


def changed(obj: Any) -> list[str]:
    """The options of a config given a value other than their default, as --flags."""
    return [flag(f.name) for f in dataclasses.fields(obj) if getattr(obj, f.name) != _default(f)]
