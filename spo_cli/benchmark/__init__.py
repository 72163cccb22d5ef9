"""The built-in benchmark and the tiny reference model: the embedded default that lets every
command, the tests and a first run work on a 2-core CPU with no download.

    from spo_cli.benchmark import ensure_default, ensure_toy
    paths = ensure_default()          # builds once into $SPO_CACHE or ~/.cache/spo, then reuses
    paths.train_problems, paths.heldout_problems, paths.model_dir

- generator: problem families -> CodeContests rows (train / held-out split, seeded)
- execute: runs the generator's own programs in this process; passing is the judge's comparison
- tinymodel: byte-level BPE tokenizer + small Llama, SFT on the generated solutions
- cache: cache keys and atomic builds (ensure_default / ensure_toy / ensure_benchmark)

A model is measured on these problems like any other: `spo sample | spo judge | spo eval`, or
spo_cli.evaluate.evaluate_models in Python (bench/reference_model.py does that).

Heavy imports (torch, transformers) happen inside functions, so importing this is cheap.
"""

from spo_cli.benchmark.cache import BenchmarkPaths, ensure_benchmark, ensure_default, ensure_toy

__all__ = ["BenchmarkPaths", "ensure_benchmark", "ensure_default", "ensure_toy"]
