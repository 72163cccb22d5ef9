"""Command-line options generated from dataclasses (spo_cli.commands._options): the one mechanism
every command uses, so a field's default and docstring are the option's default and help."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import partial

import pytest
import typer
from typer.testing import CliRunner

from spo_cli.commands._options import Cli, Options, cli, field_docs, signature
from spo_cli.parsing import parse_int_list, parse_range


@dataclass
class Base:
    size: int = 3
    """How many, from the base class."""


@dataclass(kw_only=True)
class Things(Base):
    name: str = field(metadata=cli("--name", "-n"))
    """Required, with a short name."""
    ratio: float | None = None
    """Optional number."""
    tags: tuple[str, ...] = ()
    """A repeatable option."""
    span: tuple[float, float] = field(default=(0.2, 0.8), metadata=cli(parse=partial(parse_range, lo=0, hi=1)))
    """A range given as LO,HI."""
    ks: list[int] = field(default_factory=lambda: [1, 10], metadata=cli("-k", parse=parse_int_list))
    """Integers."""
    loud: bool = True
    """A flag pair."""
    files: list[str] = field(default_factory=list, metadata=cli(argument=True))
    """Positional."""

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError(f"size must be >= 0, got {self.size}")


THINGS = Options(Things)


def run(*args, **spelled):
    """Invoke a one-command app built from Things; return (result, the Things it got)."""
    got = {}
    opts = Options(Things, spelled) if spelled else THINGS

    def main(**kw):
        got["things"] = opts.take(kw)

    from spo_cli.cli import SpoGroup  # exit codes as in spo: BadInput -> 2

    main.__signature__ = signature(opts)
    app = typer.Typer(cls=SpoGroup, add_completion=False, rich_markup_mode=None)
    app.callback()(lambda: None)
    app.command("things")(main)
    r = CliRunner().invoke(app, ["things", *args])
    return r, got.get("things")


def test_field_docs_include_base_classes_and_fold_whitespace():
    docs = field_docs(Things)
    assert docs["size"] == "How many, from the base class." and docs["span"] == "A range given as LO,HI."
    assert set(docs) == {f.name for f in dataclasses.fields(Things)}


def test_defaults_and_values_round_trip():
    r, t = run("--name", "x")
    assert r.exit_code == 0, r.output
    assert t == Things(name="x")  # every default is the field's own
    r, t = run("-n", "y", "--size", "5", "--ratio", "0.5", "--tags", "a", "--tags", "b", "--span", "0.1,0.3",
               "-k", "10,1,5", "--no-loud", "f1", "f2")
    assert r.exit_code == 0, r.output
    assert t == Things(name="y", size=5, ratio=0.5, tags=("a", "b"), span=(0.1, 0.3), ks=[1, 5, 10],
                       loud=False, files=["f1", "f2"])


def test_help_is_the_docstrings_and_defaults_the_fields():
    r, _ = run("--help")
    out = " ".join(r.output.split())
    for text in ("How many, from the base class.", "Required, with a short name.", "A repeatable option. (repeatable)",
                 "--loud / --no-loud", "[default: 0.2,0.8]", "[default: 1,10]", "[default: 3]", "-n, --name"):
        assert text in out, text


def test_bad_values_are_usage_errors_naming_the_option():
    r, _ = run("--name", "x", "--span", "0.9,0.1")
    assert r.exit_code == 2 and "--span: LO must not exceed HI" in r.output
    r, _ = run("--name", "x", "--size", "-1")
    assert r.exit_code == 2 and "size must be >= 0" in r.output  # the dataclass's own check
    r, _ = run()
    assert r.exit_code == 2 and "--name" in r.output  # required


def test_spelling_given_by_the_command():
    r, t = run("--name", "x", "--quiet", "--how-many", "7",
               loud=Cli(("--loud/--quiet",)), size=Cli(("--how-many",)))
    assert r.exit_code == 0, r.output
    assert t.loud is False and t.size == 7
    r, t = run("--name", "x", size=Cli(default=None))  # "not given": the field's default, and said so
    assert t.size == 3
    assert "[default: 3]" in " ".join(run("--help", size=Cli(default=None))[0].output.split())


def test_mistakes_in_a_spelling_are_caught_when_the_command_is_defined():
    with pytest.raises(TypeError, match="no field"):
        Options(Things, {"nope": Cli()})

    @dataclass
    class Odd:
        pair: tuple[int, int] = (1, 2)

    with pytest.raises(TypeError, match="needs Cli\\(parse=...\\)"):
        signature(Options(Odd))
    with pytest.raises(TypeError, match="defined twice"):
        signature(THINGS, THINGS)


def _params(command_path):
    from spo_cli.cli import app

    cmd = typer.main.get_command(app)
    for name in command_path:
        cmd = cmd.commands[name]
    return {p.name: p for p in cmd.params}


def test_library_defaults_are_the_commands_defaults():
    # The defaults of sample and pts options are those of SampleOptions and PTSOptions, not a copy.
    from spo_cli.pts import PTSOptions
    from spo_cli.sampling.base import SampleOptions

    for command, cls, spelled_as_text in (("sample", SampleOptions, {"temperature_range": None}),
                                          ("pts", PTSOptions, {"p_range": "0.2,0.8"})):
        params = _params([command])
        checked = 0
        for f in dataclasses.fields(cls):
            if f.name not in params or f.name == "temperature":  # temperature: None = not given
                continue
            want = spelled_as_text.get(f.name, f.default)
            got = params[f.name].default
            assert (tuple(got) if isinstance(got, list) else got) == (None if want == () else want), f.name
            checked += 1
        assert checked >= 8, command


def _train(monkeypatch, *args):
    """Invoke `spo train` with launching replaced; return (result, what launch was given)."""
    import spo_cli.train.launch
    from spo_cli.cli import app

    got = {}
    monkeypatch.setattr(spo_cli.train.launch, "launch", lambda cfg, acfg, lcfg, resume: got.update(
        cfg=cfg, acfg=acfg, lcfg=lcfg, resume=resume))
    return CliRunner().invoke(app, ["train", *args]), got


def test_train_options_are_the_configs_fields(monkeypatch):
    # Every field of spo train's configs is an option whose help is the field's docstring and whose
    # default is the field's: nothing given -> exactly the configs' defaults.
    from spo_cli.train.config import AsyncConfig, LaunchConfig, TrainConfig

    params = _params(["train"])
    for cls in (TrainConfig, AsyncConfig, LaunchConfig):
        docs = field_docs(cls)
        for f in dataclasses.fields(cls):
            assert docs.get(f.name), f"{cls.__name__}.{f.name} has no docstring (its --help)"
            assert params[f.name].help.startswith(docs[f.name]), f.name
    assert {"resume", "async_"} <= set(params) and params["async_"].opts == ["--async"]
    assert params["model"].opts == ["--model", "-m"] and params["problems"].opts == ["--problems", "-p"]
    r, got = _train(monkeypatch)
    assert r.exit_code == 0, r.output
    assert got == {"cfg": TrainConfig(), "acfg": None, "lcfg": LaunchConfig(), "resume": False}
    r, got = _train(monkeypatch, "--async", "--resume", "-p", "a", "--problems", "b", "--loss", "online=terminal:sq",
                    "--workers", "http://h:1,http://h:2", "--steps", "7", "--no-save-rollouts",
                    "--accelerate-arg=--use_fsdp", "--num-processes", "2")
    assert r.exit_code == 0, r.output
    assert got["cfg"] == TrainConfig(problems=["a", "b"], loss=["online=terminal:sq"], steps=7, save_rollouts=False)
    assert got["acfg"] == AsyncConfig(workers=["http://h:1", "http://h:2"]) and got["resume"] is True
    assert got["lcfg"] == LaunchConfig(num_processes=2, accelerate_arg=["--use_fsdp"])


def test_train_async_options_need_async(monkeypatch):
    r, got = _train(monkeypatch, "--rollout-wait", "5", "--weights-via", "path")
    assert r.exit_code == 2 and "--rollout-wait needs --async" in r.output and not got
    r, got = _train(monkeypatch, "--rollout-wait", "600")  # the default, given: nothing changed
    assert r.exit_code == 0 and got["acfg"] is None
