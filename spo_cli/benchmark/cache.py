"""Build the built-in benchmark (problems + tiny model) once and keep it in a cache directory.

Layout of one entry, `<cache>/benchmark-<config>-s<seed>-<key>/`:
    train.jsonl      train problems, CodeContests layout (JSON lines: spo_cli.streams.read_records)
    heldout.jsonl    held-out problems, same layout
    model/           Hugging Face directory: model (safetensors), tokenizer with chat template
    build.json       what was built from what (key, config, versions, timings); written last

`<key>` hashes the generator version, the trainer version and the whole config, so a change to any
of them builds a new entry instead of reusing a stale one. An entry is built in a temporary
directory next to it and renamed into place, so a killed build never leaves a half model that
looks complete; a file lock makes concurrent callers (parallel test sessions) wait for one build
instead of racing.

The cache directory is, in order: the `cache_dir` argument, $SPO_CACHE, ~/.cache/spo.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from spo_cli.benchmark.generator import GENERATOR_VERSION, iter_problems
from spo_cli.benchmark.tinymodel import TRAINER_VERSION, TinyConfig, build_model, get_config
from spo_cli.streams import fsync_dir, write_records


@dataclass(frozen=True)
class BenchmarkPaths:
    root: Path
    train_problems: Path
    heldout_problems: Path
    model_dir: Path

    def as_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items()}

    def __getitem__(self, key: str) -> Path:  # paths["model_dir"] works as well as paths.model_dir
        return getattr(self, key)

    @classmethod
    def at(cls, root: Path) -> "BenchmarkPaths":
        return cls(root, root / "train.jsonl", root / "heldout.jsonl", root / "model")


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("SPO_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "spo"


def cache_key(cfg: TinyConfig) -> str:
    blob = json.dumps(
        {"generator": GENERATOR_VERSION, "trainer": TRAINER_VERSION, "config": cfg.key()}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def entry_name(cfg: TinyConfig) -> str:
    return f"benchmark-{cfg.name}-s{cfg.seed}-{cache_key(cfg)}"


def is_complete(root: Path, cfg: TinyConfig | None = None) -> bool:
    """An entry is complete when build.json exists (written last) and names the expected key."""
    try:
        info = json.loads((root / "build.json").read_text())
    except (OSError, ValueError):
        return False
    if cfg is not None and info.get("key") != cache_key(cfg):
        return False
    p = BenchmarkPaths.at(root)
    return p.train_problems.is_file() and p.heldout_problems.is_file() and (p.model_dir / "config.json").is_file()


def build_into(root: Path, cfg: TinyConfig, on_event=None) -> dict:
    """Build a complete entry in the (new or empty) directory `root`; no atomicity here."""
    say = on_event or (lambda kind, data: None)
    t0 = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    paths = BenchmarkPaths.at(root)
    say("stage", {"stage": "problems", "n_train": cfg.n_train, "n_heldout": cfg.n_heldout})
    fams = list(cfg.families) if cfg.families else None
    train = list(iter_problems(cfg.seed, "train", cfg.n_train, families=fams))
    write_records(paths.train_problems, train)
    write_records(paths.heldout_problems, iter_problems(cfg.seed, "heldout", cfg.n_heldout, families=fams))
    t_problems = time.perf_counter() - t0
    say("stage", {"stage": "model", "steps": cfg.steps})
    sft = build_model(train, cfg, paths.model_dir, on_step=lambda m: say("step", m))
    info = {
        "key": cache_key(cfg),
        "generator_version": GENERATOR_VERSION,
        "trainer_version": TRAINER_VERSION,
        "config": cfg.key(),
        "problems_s": round(t_problems, 2),
        "build_s": round(time.perf_counter() - t0, 2),
        "sft": sft,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (root / "build.json").write_text(json.dumps(info, indent=2))
    return info


def build_atomic(final: Path, cfg: TinyConfig, *, force: bool = False, on_event=None) -> BenchmarkPaths:
    """Build `final` unless it is already complete (or `force`), via a temp dir and a rename,
    under a lock next to it so concurrent callers build once."""
    final = Path(final)
    parent = final.parent
    parent.mkdir(parents=True, exist_ok=True)
    lock_path = parent / f".{final.name}.lock"
    with open(lock_path, "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            if is_complete(final, cfg) and not force:
                return BenchmarkPaths.at(final)
            # Under the lock nobody else builds this entry: leftovers of killed builds are stale.
            for old in parent.glob(f".{final.name}.tmp-*"):
                shutil.rmtree(old, ignore_errors=True)
            tmp = parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            try:
                build_into(tmp, cfg, on_event)
                fsync_dir(tmp)
                trash = None
                if final.exists():
                    trash = parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
                    os.rename(final, trash)
                os.rename(tmp, final)
                fsync_dir(parent)
                if trash is not None:
                    shutil.rmtree(trash, ignore_errors=True)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
            return BenchmarkPaths.at(final)
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def ensure_benchmark(
    config: str | TinyConfig = "default",
    cache_dir: str | os.PathLike | None = None,
    *,
    seed: int | None = None,
    force: bool = False,
    on_event=None,
) -> BenchmarkPaths:
    """Paths of the built benchmark for `config` ("default", "toy" or a TinyConfig), building it
    into the cache first if it is missing, incomplete or stale."""
    cfg = get_config(config) if seed is None else get_config(config, seed=seed)
    return build_atomic(cache_root(cache_dir) / entry_name(cfg), cfg, force=force, on_event=on_event)


def ensure_default(cache_dir: str | os.PathLike | None = None) -> BenchmarkPaths:
    """The default benchmark and reference model (~2M parameters; built once, a few minutes on 2 cores)."""
    return ensure_benchmark("default", cache_dir)


def ensure_toy(cache_dir: str | os.PathLike | None = None) -> BenchmarkPaths:
    """The toy config: same kind of problems, a much smaller model trained in well under a minute."""
    return ensure_benchmark("toy", cache_dir)
