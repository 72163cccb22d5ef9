"""The tiny reference model: its own byte-level BPE tokenizer and a small Llama, trained by SFT on
the built-in benchmark's solutions (about 20% of them deliberately wrong, so the policy is useful
but imperfect and leaves headroom for RL).

Format (what the sampler and the judge must agree on):
- prompt: the problem's `prompt` (the CodeContests description) as one user message, through the
  tokenizer's chat template with add_generation_prompt=True:
  "<|bos|><|user|>\\n{prompt}\\n<|assistant|>\\n";
- response: the bare Python 3 program, NOT fenced in ```python```, ended by <|eos|>. A judge that
  extracts fenced code or else takes the whole response gets the program either way.

Training (a departure from a plain SFT loop only in what it is for): loss on the response tokens
only, AdamW with linear warm-up and cosine decay, a fixed number of steps (not a time budget, so the
same config gives the same model on a busy or an idle machine), examples bucketed by length to save
padding. The loop is a generator of metrics; the caller decides on logging.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from spo_cli.hw import resolve_threads  # noqa: F401 - re-exported for the benchmark modules

SPECIAL_TOKENS = ["<|pad|>", "<|bos|>", "<|eos|>", "<|user|>", "<|assistant|>", "<|system|>"]
PAD, BOS, EOS = "<|pad|>", "<|bos|>", "<|eos|>"

# Messages are "<|role|>\n{content}\n"; an assistant turn ends with eos before its newline.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] }}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}"
    "{{ '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

TRAINER_VERSION = 1


@dataclass(frozen=True)
class TinyConfig:
    """Everything that decides the built benchmark and model (it keys the cache)."""

    name: str = "default"
    seed: int = 0
    n_train: int = 5000  # train problems generated (SFT data)
    n_heldout: int = 200  # held-out problems generated (evaluation)
    families: tuple[str, ...] | None = None  # None: all families
    vocab_size: int = 1024
    hidden_size: int = 192
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 512
    max_len: int = 512  # positions; longer examples are dropped
    steps: int = 1100
    batch_size: int = 16
    lr: float = 2e-3
    warmup: int = 40
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.05
    wrong_fraction: float = 0.2  # share of SFT responses that are deliberately wrong programs
    threads: int = 0  # torch threads while training; 0 = auto (see resolve_threads)

    def key(self) -> dict:
        """The fields that decide what is built (the thread count only decides how fast)."""
        d = asdict(self)
        d.pop("threads")
        return d


CONFIGS: dict[str, TinyConfig] = {
    # ~2M parameters, 1100 steps x 16 examples (~2.4M tokens): about 4 minutes on 2 idle cores.
    # Held-out pass@1 ~18%, pass@10 ~31% (n=20, T=0.4). Copying the statement's constants appears
    # abruptly with training (700 steps: ~1%; 1400 steps: ~37%), and problem diversity matters more
    # than epochs (2000 problems x 1000 steps: ~4%), hence 5000 problems seen ~3.5 times each.
    "default": TinyConfig(),
    # For tests that only need a working model: ~0.14M parameters, six of the easier families,
    # well under a minute; held-out pass@1 a few %, pass@10 ~10-15%.
    "toy": TinyConfig(
        name="toy",
        families=("long_words", "adjacent_diff", "reverse_number", "divide_steps", "weighted_positions", "pair_sum"),
        n_train=600,
        n_heldout=60,
        vocab_size=512,
        hidden_size=64,
        num_layers=2,
        num_heads=2,
        intermediate_size=192,
        steps=160,
        batch_size=16,
        lr=5e-3,
        warmup=15,
    ),
}


def get_config(name_or_config: str | TinyConfig, **overrides) -> TinyConfig:
    if isinstance(name_or_config, TinyConfig):
        cfg = name_or_config
    else:
        if name_or_config not in CONFIGS:
            raise ValueError(f"unknown config {name_or_config!r} (known: {', '.join(CONFIGS)})")
        cfg = CONFIGS[name_or_config]
    return replace(cfg, **overrides) if overrides else cfg


# ---------------------------------------------------------------------------------------------
# Tokenizer


def train_tokenizer(texts: Iterator[str] | Sequence[str], vocab_size: int):
    """A byte-level BPE tokenizer trained on `texts`, as a transformers fast tokenizer with the
    chat template and bos/eos/pad set."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=SPECIAL_TOKENS[3:],
        chat_template=CHAT_TEMPLATE,
        model_max_length=CONFIGS["default"].max_len,
        padding_side="left",  # generation pads on the left; training builds its own batches
        clean_up_tokenization_spaces=False,
    )


def prompt_ids(tok, prompt: str) -> list[int]:
    """Token ids of a problem prompt as the sampler gives it to the model (format_prompt: one
    user message through the chat template, with the generation prompt)."""
    from spo_cli.sampling.prompts import format_prompt

    return format_prompt({"id": "", "prompt": prompt}, tok)[1]


# ---------------------------------------------------------------------------------------------
# Model


def make_model(cfg: TinyConfig, tok):
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_heads,
        max_position_embeddings=cfg.max_len,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(cfg.seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        do_sample=True,
        temperature=0.4,
        top_p=0.95,
        max_new_tokens=256,
    )
    return model


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------------
# SFT data


@dataclass
class Example:
    prompt: list[int]
    response: list[int]
    wrong: bool

    def __len__(self) -> int:
        return len(self.prompt) + len(self.response)


def sft_pools(rows: Sequence[dict], tok, max_len: int) -> list[tuple[list[int], list[list[int]], list[list[int]]]]:
    """Per problem: (prompt ids, [correct response ids], [incorrect response ids]), too-long ones dropped."""
    from spo_cli.tokens import response_ids

    pools = []
    for row in rows:
        p = prompt_ids(tok, row["description"])
        good = [response_ids(tok, s) for s in row["solutions"]["solution"]]  # complete: end with EOS
        bad = [response_ids(tok, s) for s in row["incorrect_solutions"]["solution"]]
        good = [r for r in good if len(p) + len(r) <= max_len]
        bad = [r for r in bad if len(p) + len(r) <= max_len]
        if good:
            pools.append((p, good, bad))
    return pools


def sample_epoch(pools, rng: random.Random, wrong_fraction: float) -> list[Example]:
    """One pass over the problems: one response each, wrong with probability `wrong_fraction`."""
    out = []
    for p, good, bad in pools:
        wrong = bool(bad) and rng.random() < wrong_fraction
        out.append(Example(p, rng.choice(bad if wrong else good), wrong))
    rng.shuffle(out)
    return out


def batches(pools, rng: random.Random, cfg: TinyConfig) -> Iterator[list[Example]]:
    """Endless batches: shuffled epochs, bucketed by length within windows of 16 batches."""
    while True:
        epoch = sample_epoch(pools, rng, cfg.wrong_fraction)
        window = cfg.batch_size * 16
        chunk: list[list[Example]] = []
        for i in range(0, len(epoch), window):
            part = sorted(epoch[i : i + window], key=len)
            chunk += [part[j : j + cfg.batch_size] for j in range(0, len(part), cfg.batch_size)]
        rng.shuffle(chunk)
        yield from (b for b in chunk if b)


def collate(batch: Sequence[Example], pad_id: int):
    """Right-padded input_ids, attention_mask and labels (-100 off the response), in the layout
    of every teacher-forced batch (spo_cli.tokens.pack)."""
    import torch

    from spo_cli.tokens import IGNORE, pack

    ids, mask, predicts = pack([e.prompt for e in batch], [e.response for e in batch], pad_id)  # (B, T) x2, (B, T-1)
    labels = torch.full_like(ids, IGNORE)  # (B, T): labels[t] is the token at t, as HF shifts them
    labels[:, 1:] = torch.where(predicts, ids[:, 1:], IGNORE)
    return ids, mask, labels


def lr_at(step: int, cfg: TinyConfig) -> float:
    """Linear warm-up, then cosine decay to min_lr_ratio * lr."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def train_sft(model, pools, cfg: TinyConfig, pad_id: int) -> Iterator[dict]:
    """The SFT loop, as a generator of per-step metrics ({step, loss, lr, tokens, tok_per_s})."""
    import torch

    torch.manual_seed(cfg.seed)
    rng = random.Random(f"spo-bench-sft/{cfg.seed}")
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.98),
    )
    model.train()
    tokens = 0
    t0 = time.perf_counter()
    stream = batches(pools, rng, cfg)
    for step in range(cfg.steps):
        batch = next(stream)
        ids, mask, labels = collate(batch, pad_id)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tokens += int(mask.sum())
        elapsed = time.perf_counter() - t0
        yield {
            "step": step + 1,
            "loss": loss.item(),
            "lr": opt.param_groups[0]["lr"],
            "tokens": tokens,
            "tok_per_s": tokens / max(elapsed, 1e-9),
            "elapsed_s": elapsed,
        }
    model.eval()


def build_model(train_rows: Sequence[dict], cfg: TinyConfig, out_dir: Path, on_step=None) -> dict:
    """Train the tokenizer and the model on `train_rows` and save both to `out_dir` (a Hugging Face
    directory). Returns a summary (params, tokens, loss, seconds)."""
    import torch

    threads_before = torch.get_num_threads()
    torch.set_num_threads(resolve_threads(cfg.threads))
    try:
        t0 = time.perf_counter()

        def texts():
            for row in train_rows:
                yield row["description"]
                yield from row["solutions"]["solution"]
                yield from row["incorrect_solutions"]["solution"]

        tok = train_tokenizer(texts(), cfg.vocab_size)
        t_tok = time.perf_counter() - t0
        pools = sft_pools(train_rows, tok, cfg.max_len)
        model = make_model(cfg, tok)
        last: dict = {}
        losses: list[float] = []
        for m in train_sft(model, pools, cfg, tok.pad_token_id):
            losses.append(m["loss"])
            last = m
            if on_step is not None:
                on_step(m)
        out_dir.mkdir(parents=True, exist_ok=True)
        from transformers.utils import logging as hf_logging

        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # no "Writing model shards" bar on stderr
        try:
            model.save_pretrained(out_dir)
            tok.save_pretrained(out_dir)
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        tail = losses[-max(1, len(losses) // 10) :]
        summary = {
            "params": n_params(model),
            "vocab_size": len(tok),
            "sft_problems": len(pools),
            "steps": cfg.steps,
            "tokens": last.get("tokens", 0),
            "final_loss": sum(tail) / len(tail),
            "tokenizer_s": round(t_tok, 2),
            "train_s": round(last.get("elapsed_s", 0.0), 2),
            "tok_per_s": round(last.get("tok_per_s", 0.0), 1),
            "threads": torch.get_num_threads(),
            "response_format": "bare python program (no code fence), ended by eos",
        }
        (out_dir / "spo_benchmark.json").write_text(json.dumps({"config": cfg.key(), "sft": summary}, indent=2))
        return summary
    finally:
        torch.set_num_threads(threads_before)
