"""Generate man pages for `spo` and every subcommand from the CLI itself.

    python -m spo_cli.manpages man/          # write man/spo.1, man/spo-judge.1, ...
    python -m spo_cli.manpages --check man/  # exit 1 if any page is missing or out of date

The pages are derived from the typer/click definitions (help texts, options, defaults), so they
cannot drift from `--help`; a test runs --check.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from spo_cli import __version__


def _roff(text: str) -> str:
    out = []
    for line in text.replace("\\", "\\e").splitlines():
        if line.startswith((".", "'")):
            line = "\\&" + line
        out.append(line.replace("-", "\\-"))
    return "\n".join(out)


def _paragraphs(text: str) -> str:
    paras = [p.strip() for p in (text or "").strip().split("\n\n") if p.strip()]
    return "\n.PP\n".join(_roff(" ".join(l.strip() for l in p.splitlines())) for p in paras)


def _walk(cmd, path: list[str]):
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        if getattr(sub, "hidden", False):
            continue
        yield from _walk(sub, path + [name])


def render(cmd, path: list[str]) -> str:
    name = "-".join(path)
    ctx = typer.Context(cmd, info_name=" ".join(path))
    usage = " ".join(cmd.collect_usage_pieces(ctx))
    help_text = cmd.help or ""
    summary = (help_text.strip().splitlines() or [""])[0].rstrip(".")
    lines = [
        f'.TH "{name.upper()}" "1" "" "spo {__version__}" "spo manual"',
        ".SH NAME",
        f"{_roff(name)} \\- {_roff(summary)}",
        ".SH SYNOPSIS",
        f"\\fB{_roff(' '.join(path))}\\fR {_roff(usage)}",
        ".SH DESCRIPTION",
        _paragraphs(help_text),
    ]
    opts = []
    args = []
    for p in cmd.get_params(ctx):
        record = p.get_help_record(ctx)
        if p.param_type_name == "argument":
            args.append(((p.metavar or p.name or "").upper(), getattr(p, "help", None) or ""))
        elif record:
            opts.append(record)
    if args:
        lines.append(".SH ARGUMENTS")
        for n, h in args:
            lines += [".TP", f"\\fB{_roff(n)}\\fR", _roff(h)]
    if opts:
        lines.append(".SH OPTIONS")
        for flags, h in opts:
            lines += [".TP", f"\\fB{_roff(flags)}\\fR", _roff(" ".join(h.split()))]
    subs = [(n, c) for n, c in getattr(cmd, "commands", {}).items() if not getattr(c, "hidden", False)]
    if subs:
        lines.append(".SH COMMANDS")
        for n, c in subs:
            first = ((c.help or "").strip().splitlines() or [""])[0]
            lines += [".TP", f"\\fB{_roff(' '.join(path + [n]))}\\fR", _roff(first) + f" See \\fB{'-'.join(path + [n])}\\fR(1)."]
    lines += [".SH EXIT STATUS", "0 success, 1 failure, 2 bad input or usage.", ""]
    return "\n".join(lines)


def pages() -> dict[str, str]:
    from spo_cli.cli import app

    root = typer.main.get_command(app)
    return {"-".join(path) + ".1": render(cmd, path) for path, cmd in _walk(root, ["spo"])}


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m spo_cli.manpages",
                                 description="Write the man page of every spo command (or check them).")
    ap.add_argument("out", nargs="?", default="man", help="directory of the pages (default: man)")
    ap.add_argument("--check", action="store_true", help="exit 1 if a page there is missing or out of date")
    args = ap.parse_args(argv)
    check, out = args.check, Path(args.out)
    want = pages()
    if check:
        have = {p.name for p in out.glob("*.1")}
        stale = sorted(n for n, text in want.items() if not (out / n).exists() or (out / n).read_text() != text)
        extra = sorted(have - set(want))
        if stale or extra:
            print(f"man pages out of date: {', '.join(stale + extra)}; run: python -m spo_cli.manpages {out}",
                  file=sys.stderr)
            return 1
        return 0
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.1"):
        if old.name not in want:
            old.unlink()
    for n, text in want.items():
        (out / n).write_text(text)
    print(f"wrote {len(want)} man pages to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
