"""Tokens per second of the `hf` sampling backend against a bare `model.generate` loop, and of
the `vllm` backend against `hf`.

    python bench/sample.py            # 5 repetitions each, 16 prompts x 4 samples, 64 new tokens
    python bench/sample.py --quick    # 3 repetitions, 8 prompts x 4 samples, 32 tokens (< 1 min)
    python bench/sample.py --model DIR           # any local checkpoint instead of the random one
    python bench/sample.py --default-benchmark   # the built-in benchmark's reference model
    python bench/sample.py --default-benchmark --vllm   # + the vllm backend (needs vLLM installed)

vLLM (`--vllm`; on by default in a full run where vLLM is installed, off in --quick, since its
start-up alone takes minutes here): VLLMSampler.sample on the same problems, n, max tokens,
temperature, top-p and seeds, in fp32 like `hf`, its repetitions interleaved with the others
after one warm-up call (steady state); `vllm_vs_hf` is the ratio of its median tokens/s to
`hf`'s. Its start-up (import, engine processes, compilation or the compile cache, KV cache) is
timed once, separately: `vllm_startup_s`. vLLM's CPU engine pins its own threads (one core on a
2-core machine, the other left to the engine's scheduler); `hf` runs with `--threads`.

Peer, in the same run, on the same model, prompts and settings (temperature 0.8, top-p 0.95, n
samples per prompt, batches of `--batch-size` rows, prompts sorted by length, left padding, EOS
stops a row): `model.generate(do_sample=True, num_return_sequences=n)` per batch, nothing else -
no log-probs, one global RNG, no stop strings. Ours: HFSampler.sample (raw-model log-prob of
every token, a generator per sample, records built). Tokens counted: response tokens up to and
including EOS, for both. Repetitions alternate peer and ours; figures are medians, of wall-clock
rates (`vs_bare_generate`, the headline) and of rates per CPU-second of this process
(`vs_bare_generate_cpu`: with one thread, less sensitive to other jobs on a shared machine).

The default model is a random-weight Llama (hidden 256, 4 layers, ~3M parameters, byte-level BPE
of 384 tokens) built in a temporary directory in seconds: a tiny model is the hardest case for
us, since per-step Python overhead weighs most when the forward pass is cheap.

Threads: both run with the same torch thread count, `--threads`, default 1. On this 2-core machine
shared with other jobs, 2 threads made BOTH loops several times slower and the ratio pure noise
(measured: 60 vs 560 tok/s for generate); a 3M-parameter model gains nothing from a second
thread anyway. Pass `--threads 2` on a quiet machine to see the 2-thread figures.

People-facing lines go to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROMPT_WORDS = ("read n integers and print the sum of each query modulo a prime number then output "
                "the answer on one line for every test case given in the input").split()


def make_problems(k: int) -> list[dict]:
    """k problems with prompts of varied length (8 to ~60 words)."""
    out = []
    for i in range(k):
        words = [PROMPT_WORDS[(i * 7 + j) % len(PROMPT_WORDS)] for j in range(8 + (i * 13) % 53)]
        out.append({"id": f"b{i}", "prompt": " ".join(words), "tests": []})
    return out


def bare_generate(model, tok, sampler, problems, n, batch_size, max_new, temperature, top_p,
                  seed) -> tuple[float, float, int]:
    """The peer: model.generate over the same batches (same prompts, same grouping)."""
    import torch

    rows = sampler.rows(problems, n)  # same formatting as ours
    # Same batching as ours: rows sorted by prompt length, batch_size rows per batch, each batch
    # being whole groups of n samples of one prompt.
    order = sorted(range(len(rows)), key=lambda i: (-len(rows[i].prompt_ids), i))
    prompts_per_batch = max(1, batch_size // n)
    firsts = [rows[i] for i in order if rows[i].index == 0]
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    eos = sampler.eos
    torch.manual_seed(seed)
    t, c = time.perf_counter(), time.process_time()
    tokens = 0
    with torch.inference_mode():
        for s in range(0, len(firsts), prompts_per_batch):
            group = firsts[s:s + prompts_per_batch]
            P = max(len(r.prompt_ids) for r in group)
            ids = torch.full((len(group), P), pad, dtype=torch.long)
            mask = torch.zeros((len(group), P), dtype=torch.long)
            for j, r in enumerate(group):
                ids[j, P - len(r.prompt_ids):] = torch.tensor(r.prompt_ids)
                mask[j, P - len(r.prompt_ids):] = 1
            out = model.generate(input_ids=ids, attention_mask=mask, do_sample=True, temperature=temperature,
                                 top_p=top_p, top_k=0, max_new_tokens=max_new, num_return_sequences=n,
                                 pad_token_id=pad, eos_token_id=sorted(eos))
            for row in out[:, P:].tolist():
                k = next((i + 1 for i, x in enumerate(row) if x in eos), len(row))
                tokens += k
    return time.perf_counter() - t, time.process_time() - c, tokens


def ours(sampler, problems) -> tuple[float, float, int]:
    t, c = time.perf_counter(), time.process_time()
    recs = sampler.sample(problems)
    return time.perf_counter() - t, time.process_time() - c, sum(len(r["response_ids"]) for r in recs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small run, under a minute")
    ap.add_argument("--model", default=None, help="checkpoint directory (default: a random tiny Llama)")
    ap.add_argument("--default-benchmark", action="store_true", help="use spo_cli.benchmark.ensure_default()'s model")
    ap.add_argument("--problems", type=int, default=None)
    ap.add_argument("-n", type=int, default=4, help="samples per prompt")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=None)
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for both (default 1)")
    ap.add_argument("--vllm", action=argparse.BooleanOptionalAction, default=None,
                    help="also measure the vllm backend (default: in a full run, when vLLM is installed)")
    args = ap.parse_args()
    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731

    import torch
    from transformers.utils import logging as hf_logging

    from spo_cli.sampling import SampleOptions
    from spo_cli.sampling.hf import HFSampler, load_model

    hf_logging.disable_progress_bar()
    torch.set_num_threads(max(1, args.threads))
    k = args.problems or (8 if args.quick else 16)
    max_new = args.max_new_tokens or (32 if args.quick else 64)
    reps = args.reps or (3 if args.quick else 5)
    temperature, top_p, seed = 0.8, 0.95, 0
    import importlib.util

    with_vllm = args.vllm if args.vllm is not None else (not args.quick and importlib.util.find_spec("vllm") is not None)

    with tempfile.TemporaryDirectory() as d:
        if args.model:
            model_dir, label = args.model, args.model
        elif args.default_benchmark:
            from spo_cli.benchmark import ensure_default

            model_dir, label = str(ensure_default().model_dir), "default-benchmark"
        else:
            from tests.tinymodel_util import build_tiny_model

            model_dir = str(build_tiny_model(Path(d) / "m", hidden_size=256, num_layers=4, init_std=0.05))
            label = "random-llama-h256-l4"
        model, tok = load_model(model_dir, device="cpu", dtype="float32")
        problems = make_problems(k)
        opts = SampleOptions(n=args.n, temperature=temperature, top_p=top_p, max_new_tokens=max_new,
                             seed=seed, batch_size=args.batch_size)
        sampler = HFSampler(model, tok, opts)
        params = sum(p.numel() for p in model.parameters())
        log(f"model {label} ({params / 1e6:.1f}M params), {k} prompts x {args.n} samples, batch "
            f"{args.batch_size} rows, {max_new} new tokens, threads {torch.get_num_threads()}")

        # warm-up (first calls allocate and pick kernels)
        bare_generate(model, tok, sampler, problems[:2], args.n, args.batch_size, 4, temperature, top_p, seed)
        ours(HFSampler(model, tok, opts.with_(max_new_tokens=4)), problems[:2])
        vllm_sampler, vllm_startup = None, None
        if with_vllm:
            from spo_cli.sampling.vllm import VLLMSampler

            t0 = time.perf_counter()
            vllm_sampler = VLLMSampler.from_pretrained(model_dir, opts, dtype="float32")
            vllm_startup = time.perf_counter() - t0
            log(f"vllm engine started in {vllm_startup:.1f} s")
            ours(vllm_sampler, problems)  # warm-up: steady state from here

        peer_rates, our_rates, peer_cpu, our_cpu, peer_tok, our_tok = [], [], [], [], [], []
        vllm_rates, vllm_tok = [], []
        for rep in range(reps):
            tp, cp, np_ = bare_generate(model, tok, sampler, problems, args.n, args.batch_size, max_new,
                                        temperature, top_p, seed + rep)
            to, co, no = ours(sampler, problems)
            peer_rates.append(np_ / tp)
            our_rates.append(no / to)
            peer_cpu.append(np_ / cp)
            our_cpu.append(no / co)
            peer_tok.append(np_)
            our_tok.append(no)
            line = (f"rep {rep + 1}/{reps}: generate {np_ / tp:,.0f} tok/s ({np_} tokens), "
                    f"ours {no / to:,.0f} tok/s ({no} tokens)")
            if vllm_sampler is not None:
                tv, _, nv = ours(vllm_sampler, problems)
                vllm_rates.append(nv / tv)
                vllm_tok.append(nv)
                line += f", vllm {nv / tv:,.0f} tok/s ({nv} tokens)"
            log(line)
        if vllm_sampler is not None:
            vllm_sampler.close()

    med = statistics.median
    result = {
        "model": label,
        "params_m": round(params / 1e6, 2),
        "prompts": k,
        "n": args.n,
        "batch_size": args.batch_size,
        "max_new_tokens": max_new,
        "threads": torch.get_num_threads(),
        "reps": reps,
        "tokens_per_s": round(med(our_rates), 1),
        "bare_generate_tokens_per_s": round(med(peer_rates), 1),
        "vs_bare_generate": round(med(our_rates) / med(peer_rates), 3),
        "tokens_per_cpu_s": round(med(our_cpu), 1),
        "bare_generate_tokens_per_cpu_s": round(med(peer_cpu), 1),
        "vs_bare_generate_cpu": round(med(our_cpu) / med(peer_cpu), 3),
        "tokens_ours": int(med(our_tok)),
        "tokens_bare": int(med(peer_tok)),
        "vllm_tokens_per_s": round(med(vllm_rates), 1) if vllm_rates else None,
        "vllm_vs_hf": round(med(vllm_rates) / med(our_rates), 3) if vllm_rates else None,
        "vllm_startup_s": round(vllm_startup, 1) if vllm_startup is not None else None,
        "tokens_vllm": int(med(vllm_tok)) if vllm_tok else None,
    }
    log(f"ours {result['tokens_per_s']:,} tok/s vs bare generate {result['bare_generate_tokens_per_s']:,} "
        f"tok/s: {result['vs_bare_generate']}x")
    if vllm_rates:
        log(f"vllm {result['vllm_tokens_per_s']:,} tok/s vs hf {result['tokens_per_s']:,} tok/s: "
            f"{result['vllm_vs_hf']}x (engine start-up {result['vllm_startup_s']} s)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
