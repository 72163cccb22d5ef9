"""CLI conventions every command follows: data on stdout, people on stderr, exit codes, `-`,
compression by the name stdout is redirected to, and man pages that match the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from spo_cli import __version__
from spo_cli.schema import new_trajectory
from spo_cli.streams import read_records, write_records

ROOT = Path(__file__).resolve().parent.parent


def spo(*args, stdin: bytes | None = None, stdout=subprocess.PIPE, env=None):
    return subprocess.run([sys.executable, "-m", "spo_cli", *args], input=stdin, stdout=stdout,
                          stderr=subprocess.PIPE, env=env)


def test_version_and_help():
    r = spo("--version")
    assert r.returncode == 0 and r.stdout.decode().strip() == f"spo {__version__}"
    r = spo("--help")
    assert r.returncode == 0 and b"records" in r.stdout
    r = spo()  # no command: usage help, exit 2 like any usage error
    assert r.returncode == 2 and b"Usage: spo" in r.stdout + r.stderr


def test_usage_error_exits_2():
    r = spo("records", "cat", "--no-such-option")
    assert r.returncode == 2 and r.stdout == b"" and b"No such option" in r.stderr


def test_data_on_stdout_people_on_stderr(tmp_path):
    recs = [new_trajectory(problem_id="p", prompt="x", response=str(i)) for i in range(3)]
    src = tmp_path / "in.jsonl.zst"
    write_records(src, recs)
    r = spo("records", "cat", str(src), "-k", "trajectory")
    assert r.returncode == 0
    # stdout is exactly the records, nothing else; the summary went to stderr
    assert [orjson.loads(l) for l in r.stdout.splitlines()] == recs
    assert b"3 records" in r.stderr


def test_dash_is_stdin_and_stdout():
    r = spo("records", "cat", "-", "-o", "-", stdin=b'{"a": 1}\n{"a": 2}\n')
    assert r.returncode == 0 and r.stdout == b'{"a":1}\n{"a":2}\n'


def test_bad_input_exit_2_names_file_and_line(tmp_path):
    src = tmp_path / "bad.jsonl"
    src.write_bytes(b'{"a": 1}\n{"a": \n')
    out = tmp_path / "out.jsonl"
    r = spo("records", "cat", str(src), "-o", str(out))
    assert r.returncode == 2
    assert f"{src}:2: malformed JSON".encode() in r.stderr
    assert list(read_records(out)) == [{"a": 1}]  # what came before the error is kept
    r = spo("records", "cat", str(src), "--skip-invalid")
    assert r.returncode == 0 and r.stdout == b'{"a":1}\n' and b"1 invalid skipped" in r.stderr


def test_stdout_redirected_to_named_zst_file_is_compressed(tmp_path):
    target = tmp_path / "traj.jsonl.zst"
    with open(target, "wb") as f:
        r = spo("records", "cat", "-", stdin=b'{"a": 1}\n', stdout=f)
    assert r.returncode == 0
    assert target.read_bytes().startswith(b"\x28\xb5\x2f\xfd")
    assert list(read_records(target)) == [{"a": 1}]
    # a pipe gets plain JSON lines unless asked
    assert spo("records", "cat", "-", stdin=b'{"a": 1}\n').stdout == b'{"a":1}\n'
    z = spo("records", "cat", "-", "--compress", "zstd", stdin=b'{"a": 1}\n').stdout
    assert z.startswith(b"\x28\xb5\x2f\xfd")


def test_writing_to_a_directory_adds_a_shard(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(2):
        assert spo("records", "cat", "-", "-o", str(corpus), stdin=b'{"n": %d}\n' % i).returncode == 0
    shards = sorted(corpus.iterdir())
    assert len(shards) == 2 and all(s.name.endswith(".jsonl.zst") for s in shards)
    assert sorted(r["n"] for r in read_records(corpus)) == [0, 1]


def test_cat_filters_by_reward_and_source():
    recs = [{"id": "a", "reward": 1.0, "source": "human"}, {"id": "b", "reward": 0.0, "source": "ref"},
            {"id": "c", "reward": None, "source": "ref"}, {"id": "d", "reward": 1, "source": "ref"},
            {"id": "e", "reward": 0.5}]
    stdin = b"".join(orjson.dumps(r) + b"\n" for r in recs)
    ids = lambda r: [orjson.loads(x)["id"] for x in r.stdout.splitlines()]  # noqa: E731
    r = spo("records", "cat", "-", "--min-reward", "1", stdin=stdin)
    assert r.returncode == 0 and ids(r) == ["a", "d"] and b"3 filtered out" in r.stderr
    assert ids(spo("records", "cat", "-", "--source", "ref", stdin=stdin)) == ["b", "c", "d"]
    assert ids(spo("records", "cat", "-", "--source", "ref", "--source", "human", "--min-reward",
                   "0.5", stdin=stdin)) == ["a", "d"]


def test_broken_pipe_is_quiet(tmp_path):
    src = tmp_path / "many.jsonl"
    write_records(src, ({"i": i, "pad": "x" * 100} for i in range(200_000)))
    p = subprocess.Popen(f"{sys.executable} -m spo_cli records cat {src} | head -n 1",
                         shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=120)
    assert out == b'{"i":0,"pad":"' + b"x" * 100 + b'"}\n'
    assert b"Traceback" not in err


def test_records_check_reports_counts_and_fails_on_invalid(tmp_path):
    good = new_trajectory(problem_id="p", prompt="x", response="a", reward=1.0, verdict="OK")
    src = tmp_path / "t.jsonl"
    write_records(src, [good, {"id": "x"}])
    r = spo("records", "check", str(src))
    assert r.returncode == 2
    assert orjson.loads(r.stdout) == {"records": 1, "invalid": 1, "judged": 1, "mean_reward": 1.0}
    assert f"{src}:2:".encode() in r.stderr and b"problem_id" in r.stderr


def test_man_pages_are_up_to_date():
    r = subprocess.run([sys.executable, "-m", "spo_cli.manpages", "--check", str(ROOT / "man")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (ROOT / "man" / "spo.1").exists()


def test_every_command_is_registered_and_a_missing_module_is_an_error(monkeypatch):
    import pytest
    import typer

    from spo_cli import cli

    names = set(typer.main.get_command(cli.app).commands)
    assert names == {name for name, _ in cli.COMMANDS}
    # A command module that is missing (renamed, say) stops `spo` loudly instead of vanishing.
    monkeypatch.setattr(cli, "COMMANDS", [("renamed", "no_such_module")])
    with pytest.raises(ModuleNotFoundError, match="spo_cli.commands.no_such_module"):
        cli._register()
