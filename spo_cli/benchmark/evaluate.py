"""A small, self-contained pass@k evaluation of a model on benchmark problems: sample with
transformers `generate` on the CPU, run every distinct program on all the problem's tests in a
child process (spo_cli.benchmark.runner), and report pass@k with the unbiased estimator (MATH.md
section 10). It exists to measure the reference model while `spo sample` / `spo judge` / `spo eval`
are being written; those are the tools for real runs.

Sampling and judging never overlap, so the two CPU cores are not oversubscribed: generation uses
`threads` torch threads, judging `workers` child processes.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from spo_cli.benchmark.runner import passes, run_many


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for n samples of which c are correct: 1 - C(n-c, k) / C(n, k) (MATH.md §10),
    computed as 1 - prod_{i=n-c+1..n} (1 - k/i)."""
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"need 0 <= c <= n and k >= 1, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


@dataclass
class EvalResult:
    pass_at: dict[int, float]  # k -> mean pass@k over problems
    per_problem: list[dict]  # {id, family, n, c}
    per_family: dict[str, dict[int, float]]
    gen_s: float
    judge_s: float
    gen_tokens: int
    samples: list[list[str]] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            **{f"pass@{k}": round(v, 4) for k, v in self.pass_at.items()},
            "problems": len(self.per_problem),
            "n": self.per_problem[0]["n"] if self.per_problem else 0,
            "gen_s": round(self.gen_s, 1),
            "judge_s": round(self.judge_s, 1),
            "gen_tok_per_s": round(self.gen_tokens / max(self.gen_s, 1e-9), 1),
        }


def generate(
    model,
    tok,
    prompts: Sequence[str],
    *,
    n: int = 20,
    temperature: float = 0.4,
    top_p: float = 0.95,
    max_new_tokens: int = 160,
    prompts_per_batch: int = 4,
    seed: int = 0,
    threads: int = 0,
    on_batch=None,
) -> tuple[list[list[str]], int]:
    """n sampled responses per prompt (decoded, special tokens dropped) and the generated token count."""
    import torch

    from spo_cli.benchmark.tinymodel import prompt_ids, resolve_threads

    before = torch.get_num_threads()
    torch.set_num_threads(resolve_threads(threads))
    torch.manual_seed(seed)
    pad = tok.pad_token_id
    out: list[list[str]] = []
    n_tokens = 0
    try:
        for b in range(0, len(prompts), prompts_per_batch):
            chunk = [prompt_ids(tok, p) for p in prompts[b : b + prompts_per_batch]]
            width = max(map(len, chunk))
            ids = torch.tensor([[pad] * (width - len(c)) + c for c in chunk])  # (B, T), left-padded
            mask = (torch.arange(width)[None, :] >= torch.tensor([width - len(c) for c in chunk])[:, None]).long()
            with torch.no_grad():
                gen = model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    do_sample=True,
                    temperature=temperature,
                    top_p=top_p,
                    top_k=0,
                    num_return_sequences=n,
                    max_new_tokens=max_new_tokens,
                    eos_token_id=tok.eos_token_id,
                    pad_token_id=pad,
                )
            new = gen[:, width:]  # (B*n, L)
            for i in range(len(chunk)):
                rows = new[i * n : (i + 1) * n]
                texts = []
                for r in rows.tolist():
                    if tok.eos_token_id in r:
                        r = r[: r.index(tok.eos_token_id) + 1]
                    r = [t for t in r if t != pad]
                    n_tokens += len(r)
                    texts.append(tok.decode(r, skip_special_tokens=True))
                out.append(texts)
            if on_batch is not None:
                on_batch(len(chunk))
    finally:
        torch.set_num_threads(before)
    return out, n_tokens


def judge_samples(
    problems: Sequence[dict], samples: Sequence[Sequence[str]], *, workers: int = 2, timeout: float = 1.0
) -> list[int]:
    """Number of correct samples per problem (each distinct program is run once)."""
    jobs, index = [], {}
    for pi, (prob, outs) in enumerate(zip(problems, samples)):
        inputs = [t["input"] for t in prob["tests"]]
        for code in set(outs):
            index[(pi, code)] = len(jobs)
            jobs.append((code, inputs))
    # The benchmark's programs run in milliseconds; a sample that takes a second is looping.
    results = run_many(jobs, workers=workers, timeout=timeout)
    counts = []
    for pi, (prob, outs) in enumerate(zip(problems, samples)):
        expected = [t["output"] for t in prob["tests"]]
        ok = {code: passes(results[index[(pi, code)]], expected) for code in set(outs)}
        counts.append(sum(ok[c] for c in outs))
    return counts


def evaluate(
    model_dir,
    problems: Sequence[dict],
    *,
    n: int = 20,
    ks: Sequence[int] = (1, 10),
    temperature: float = 0.4,
    top_p: float = 0.95,
    seed: int = 0,
    threads: int = 0,
    workers: int = 2,
    keep_samples: bool = False,
    on_batch=None,
) -> EvalResult:
    """pass@k of the model in `model_dir` on normalised Problem records (stdin/stdout tests)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.eval()
    t0 = time.perf_counter()
    samples, n_tokens = generate(
        model, tok, [p["prompt"] for p in problems], n=n, temperature=temperature, top_p=top_p,
        seed=seed, threads=threads, on_batch=on_batch,
    )
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    counts = judge_samples(problems, samples, workers=workers)
    judge_s = time.perf_counter() - t0
    per_problem = [
        {"id": p["id"], "family": (p.get("meta") or {}).get("family"), "n": n, "c": c}
        for p, c in zip(problems, counts)
    ]
    ks = [k for k in ks if k <= n]
    mean = {k: sum(pass_at_k(n, x["c"], k) for x in per_problem) / max(1, len(per_problem)) for k in ks}
    fam: dict[str, list[dict]] = defaultdict(list)
    for x in per_problem:
        fam[x["family"] or "?"].append(x)
    per_family = {f: {k: sum(pass_at_k(n, x["c"], k) for x in xs) / len(xs) for k in ks} for f, xs in sorted(fam.items())}
    return EvalResult(mean, per_problem, per_family, gen_s, judge_s, n_tokens, list(samples) if keep_samples else [])
