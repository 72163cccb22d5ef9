"""Session fixtures shared by the whole test suite: the built-in benchmark and its reference model.

Both are built once into the cache ($SPO_CACHE, else ~/.cache/spo) and reused by every later test
session until the generator, the trainer or the config changes (the cache key covers all three).
A build is atomic and locked, so parallel sessions wait for one build instead of racing.

    def test_something(toy_benchmark):            # tiny model, built in well under a minute
        model = AutoModelForCausalLM.from_pretrained(toy_benchmark.model_dir)

    def test_other(default_benchmark):            # the ~2M-parameter reference model (minutes,
        problems = default_benchmark.heldout_problems   # once; then instant)

Each fixture returns a BenchmarkPaths: `.train_problems`, `.validation_problems`, `.heldout_problems` (JSONL files of
CodeContests rows; read them with spo_cli.streams.read_records(path, kind="problem")),
`.model_dir` (a Hugging Face directory) and `.root`; `paths["model_dir"]` works too.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def default_benchmark():
    """The default built-in benchmark and reference model (built once, then cached)."""
    from spo_cli.benchmark import ensure_default

    return ensure_default()


@pytest.fixture(scope="session")
def toy_benchmark():
    """The toy config: the same kind of problems with a tiny model, for tests that only need a
    working model and tokenizer (built once in well under a minute, then cached)."""
    from spo_cli.benchmark import ensure_toy

    return ensure_toy()


@pytest.fixture(scope="module")
def pool():
    """One sandboxed judge runner, shared by a module's tests (workers and learners judge with it)."""
    from spo_cli.judge.runner import SandboxPool

    p = SandboxPool(1)
    yield p
    p.close()
