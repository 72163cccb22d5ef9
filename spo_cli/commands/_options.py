"""Options shared by commands, so every command spells them the same way."""

from __future__ import annotations

import typer

Output = typer.Option(
    "-", "--output", "-o",
    help="Where to write: a file (written atomically; .zst/.gz compress), a directory "
    "(adds a new shard to a corpus), or - for stdout.",
)
Compress = typer.Option(
    None, "--compress",
    help="none, zstd or gzip. Default: by the target's name; plain for a pipe or terminal.",
)
SkipInvalid = typer.Option(
    False, "--skip-invalid",
    help="Count and report invalid input records instead of stopping at the first (exit 2).",
)
Dedup = typer.Option(False, "--dedup", help="Drop trajectories whose id was already read.")

