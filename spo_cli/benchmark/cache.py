"""Build the built-in benchmark (problems + tiny model) once and keep it in a cache directory.

Layout of one entry, `<cache>/benchmark-<config>-s<seed>-<key>/`:
    train.jsonl      train problems, CodeContests layout (JSON lines: spo_cli.streams.read_records)
    validation.jsonl validation problems (for choosing settings), same layout
    heldout.jsonl    held-out problems (scored once, at the end), same layout
    code_contests/train-00000-of-00001.parquet
                     the train problems as a Parquet shard in the Hugging Face CodeContests schema,
                     the form users download real datasets in (written on first use of an entry
                     built before it existed; not part of the key)
    model/           Hugging Face directory: model (safetensors), tokenizer with chat template
    build.json       what was built from what (key, config, versions, timings); written last

`<key>` hashes the generator version, the trainer version and the whole config, so a change to any
of them builds a new entry instead of reusing a stale one. The held-out and validation files are
versioned apart (SPLITS_VERSION, recorded in build.json): they do not touch the model, so an entry
whose splits are older is completed by rewriting those two files, in a second, not rebuilt. An entry is built in a temporary
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

from spo_cli.benchmark.generator import GENERATOR_VERSION, SPLITS_VERSION, iter_problems
from spo_cli.benchmark.tinymodel import TRAINER_VERSION, TinyConfig, build_model, get_config
from spo_cli.streams import fsync_dir, write_records


@dataclass(frozen=True)
class BenchmarkPaths:
    root: Path
    train_problems: Path
    heldout_problems: Path
    model_dir: Path
    validation_problems: Path
    train_parquet: Path

    def as_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items()}

    def __getitem__(self, key: str) -> Path:  # paths["model_dir"] works as well as paths.model_dir
        return getattr(self, key)

    @classmethod
    def at(cls, root: Path) -> BenchmarkPaths:
        return cls(root, root / "train.jsonl", root / "heldout.jsonl", root / "model", root / "validation.jsonl",
                   root / "code_contests" / "train-00000-of-00001.parquet")


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


def _read_build(root: Path) -> dict | None:
    try:
        return json.loads((root / "build.json").read_text())
    except (OSError, ValueError):
        return None


def model_complete(root: Path, cfg: TinyConfig | None = None) -> bool:
    """The entry's model and train problems are built (build.json, written last, names the key)."""
    info = _read_build(root)
    if info is None or (cfg is not None and info.get("key") != cache_key(cfg)):
        return False
    p = BenchmarkPaths.at(root)
    return p.train_problems.is_file() and p.heldout_problems.is_file() and (p.model_dir / "config.json").is_file()


def is_complete(root: Path, cfg: TinyConfig | None = None) -> bool:
    """Complete: the model is built and the held-out and validation files are of this SPLITS_VERSION."""
    return model_complete(root, cfg) and (_read_build(root) or {}).get("splits_version") == SPLITS_VERSION \
        and BenchmarkPaths.at(root).validation_problems.is_file()


def write_splits(root: Path, cfg: TinyConfig) -> None:
    """(Re)write the held-out and validation problems of `cfg` in `root` (each file atomically)."""
    fams = list(cfg.families) if cfg.families else None
    paths = BenchmarkPaths.at(root)
    write_records(paths.heldout_problems, iter_problems(cfg.seed, "heldout", cfg.n_heldout, families=fams))
    write_records(paths.validation_problems, iter_problems(cfg.seed, "validation", cfg.n_heldout, families=fams))


def refresh_splits(root: Path, cfg: TinyConfig) -> None:
    """Bring an entry built with older held-out/validation splits up to SPLITS_VERSION, keeping its
    model (train problems and model do not depend on them); build.json is updated last."""
    write_splits(root, cfg)
    info = _read_build(root) or {}
    info.update(splits_version=SPLITS_VERSION, splits_written=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    tmp = root / f".build.json.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(info, indent=2))
    os.replace(tmp, root / "build.json")
    fsync_dir(root)


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
    write_splits(root, cfg)
    write_parquet_shard(paths)
    t_problems = time.perf_counter() - t0
    say("stage", {"stage": "model", "steps": cfg.steps})
    sft = build_model(train, cfg, paths.model_dir, on_step=lambda m: say("step", m))
    info = {
        "key": cache_key(cfg),
        "generator_version": GENERATOR_VERSION,
        "splits_version": SPLITS_VERSION,
        "trainer_version": TRAINER_VERSION,
        "config": cfg.key(),
        "problems_s": round(t_problems, 2),
        "build_s": round(time.perf_counter() - t0, 2),
        "sft": sft,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (root / "build.json").write_text(json.dumps(info, indent=2))
    return info


def write_parquet_shard(paths: BenchmarkPaths) -> None:
    """train.jsonl as a CodeContests Parquet shard (exactly the Hugging Face columns; the
    generator's own `family` and `params` are not among them), written atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from spo_cli.importers.codecontests import arrow_schema
    from spo_cli.streams import read_records

    out = paths.train_parquet
    out.parent.mkdir(exist_ok=True)
    schema = arrow_schema()
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with pq.ParquetWriter(tmp, schema) as w:
            rows: list[dict] = []
            for row in read_records(paths.train_problems):
                rows.append(row)
                if len(rows) == 256:
                    w.write_table(pa.Table.from_pylist(rows, schema=schema))
                    rows = []
            if rows:
                w.write_table(pa.Table.from_pylist(rows, schema=schema))
        os.replace(tmp, out)
        fsync_dir(out.parent)
    finally:
        tmp.unlink(missing_ok=True)


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
                paths = BenchmarkPaths.at(final)
                if not paths.train_parquet.is_file():  # an entry built before the shard existed
                    write_parquet_shard(paths)
                return paths
            if model_complete(final, cfg) and not force:  # only the held-out/validation files are old
                say = on_event or (lambda kind, data: None)
                say("stage", {"stage": "splits", "splits_version": SPLITS_VERSION})
                refresh_splits(final, cfg)
                paths = BenchmarkPaths.at(final)
                if not paths.train_parquet.is_file():
                    write_parquet_shard(paths)
                return paths
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
