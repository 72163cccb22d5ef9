"""What every sampling backend shares: options, per-sample seeds and temperatures, and records.

A backend (hf.py, vllm.py) only turns prompt token ids into response token ids and their
log-probs (`Sampler._generate`); everything else lives here, so both backends format prompts,
draw seeds and temperatures, and build Trajectory records in exactly the same way.

The behaviour log-probs (`logprobs` on each record) are those of the RAW model: for each response
token x_t, log softmax(logits)[x_t] of the model's logits at temperature 1 with no top-p, computed
in fp32, i.e. log pi_theta(x_t | x_<t) of docs/math.md. Temperature and top-p only decide which token is
drawn; they do not enter the recorded number. SPO's pi_theta (Eq 11) and the importance weights of
PPO (docs/math.md §9) are both about the raw model, and the trainer computes its own log-probs
the same way, so the two are directly comparable.

Seeds. Sample k of problem `id` under run seed S uses its own seed, a hash of (S, id, k), and its
temperature (when drawn from a range) comes from the same hash. A sample therefore depends only on
(S, id, k, the model, the options), not on batch size, on which other problems share its batch, or
on -n; up to floating-point noise between batch shapes (a padded batch can round differently, which
can flip a near-tie draw at very rare steps). The paper does not specify how it seeds its sampler;
this is our choice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from spo_cli.errors import BadInput

SEED_BITS = 63


@dataclass(frozen=True)
class SampleOptions:
    """Options of one sampling run; the same for every backend."""

    n: int = 1
    """Samples per problem."""
    temperature: float = 1.0
    """Sampling temperature (0 = greedy). Ignored when temperature_range is set."""
    temperature_range: tuple[float, float] | None = None
    """(lo, hi): each sample draws its temperature uniformly from [lo, hi] (online SPO)."""
    top_p: float = 1.0
    """Nucleus sampling: draw from the smallest set of tokens whose probability reaches top_p
    (after temperature). 1 = off."""
    max_new_tokens: int = 512
    """Most response tokens per sample (the EOS token, when sampled, counts and is kept)."""
    seed: int = 0
    """Run seed; each sample's own seed is derived from (seed, problem id, sample index)."""
    stop: tuple[str, ...] = ()
    """Stop strings: a sample ends with the token that completes one (the token is kept)."""
    system: str | None = None
    """System message (chat template), or a first paragraph (plain template)."""
    template: str | None = None
    """User-message template with {prompt} (and optionally {problem_id}); None = the prompt."""
    use_chat_template: bool = True
    """Use the tokenizer's chat template when it has one; else the plain template."""
    source: str = "online"
    """Trajectory `source`: online (the policy being trained) or ref (the reference policy)."""
    policy_version: int = 0
    """Stamped on every trajectory: the learner step of the weights that sampled it."""
    batch_size: int = 16
    """Rows (samples) decoded together by the hf backend."""

    def __post_init__(self) -> None:
        """Raises ValueError naming the option (the command turns it into a usage error)."""
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.temperature_range is not None:
            lo, hi = self.temperature_range
            if not 0 <= lo <= hi:
                raise ValueError(f"temperature range needs 0 <= LO <= HI, got {lo},{hi}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if any(not s for s in self.stop):
            raise ValueError("stop strings must not be empty")
        if self.template is not None and "{prompt}" not in self.template:
            raise ValueError("the prompt template has no {prompt} placeholder")

    def with_(self, **changes: Any) -> SampleOptions:
        return replace(self, **changes)


def parse_temperature_range(text: str) -> tuple[float, float]:
    """'0.2,1.2' -> (0.2, 1.2): spo_cli.parsing.parse_range (BadInput naming the option)."""
    from spo_cli.parsing import parse_range

    return parse_range(text, "--temperature-range", lo=0)


def _hash64(*parts: Any) -> int:
    h = hashlib.blake2b(digest_size=8)
    for p in parts:
        h.update(str(p).encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return int.from_bytes(h.digest(), "little")


def sample_seed(seed: int, problem_id: str, index: int) -> int:
    """The seed of sample `index` of `problem_id` under run seed `seed` (63 bits)."""
    return _hash64("spo-sample", seed, problem_id, index) >> (64 - SEED_BITS)


def sample_temperature(opts: SampleOptions, row_seed: int) -> float:
    """The sample's temperature: fixed, or uniform in temperature_range from the row's seed."""
    if opts.temperature_range is None:
        return float(opts.temperature)
    lo, hi = opts.temperature_range
    u = _hash64("spo-temperature", row_seed) / 2.0**64  # [0, 1)
    return lo + (hi - lo) * u


@dataclass
class Row:
    """One sample to draw: sample `index` of `problem`."""

    problem: dict
    index: int
    prompt: str  # the formatted prompt text given to the model
    prompt_ids: list[int]
    temperature: float
    seed: int


@dataclass
class Generation:
    """What a backend returns for a Row."""

    response_ids: list[int]
    logprobs: list[float]  # raw-model log-prob of each response token (fp32)
    finish_reason: str  # "stop" (EOS or a stop string) or "length"
    meta: dict = field(default_factory=dict)


class Sampler:
    """Draws trajectories for problems. Subclasses implement `_generate(rows)`.

    sample(problems, n) -> list of Trajectory dicts, problem order then sample index.
    iter_sample(problems) streams them, reading problems in windows of a few batches.

    `opts` may be replaced between calls (`sampler.opts = sampler.opts.with_(...)`). A trainer
    that samples the same problems again should move the seed on (e.g. seed=step) as well as
    policy_version: the same seed gives every (problem, k) the same random draws, which with
    new weights means correlated, not independent, samples.
    """

    backend = "base"

    def __init__(self, tokenizer: Any, opts: SampleOptions | None = None, *, model_name: str | None = None):
        from spo_cli.sampling.prompts import tokenizer_fingerprint

        self.tokenizer = tokenizer
        self.opts = opts or SampleOptions()
        self.model_name = model_name or "model"
        self.fingerprint = tokenizer_fingerprint(tokenizer)

    # --------------------------------------------------------------- the backend's part
    def _generate(self, rows: Sequence[Row]) -> list[Generation]:
        raise NotImplementedError

    # --------------------------------------------------------------- shared
    def generate(self, rows: Sequence[Row]) -> list[Generation]:
        """Response ids, log-probs and finish reason for each row, in order: the public entry to
        the backend for callers that build their own rows (PTS continues prefixes this way: a
        prefix is a longer prompt)."""
        return self._generate(rows) if rows else []

    def score(self, prompt_ids: Sequence[int], response_ids: Sequence[int]) -> list[float] | None:
        """The raw model's teacher-forced log-prob of each response token, or None when the
        backend cannot compute them (PTS's log-prob split needs them)."""
        return None

    max_positions: int | None = None
    """The model's context length (prompt + response tokens), when known."""

    def row_budget(self, row: Row) -> int:
        """Most response tokens for a row: max_new_tokens, within the model's context. BadInput
        when the prompt leaves no room."""
        budget = self.opts.max_new_tokens
        if self.max_positions:
            room = self.max_positions - len(row.prompt_ids)
            if room < 1:
                raise BadInput(f"problem {row.problem['id']!r}: the prompt is {len(row.prompt_ids)} "
                               f"tokens, the model's context is {self.max_positions}")
            budget = min(budget, room)
        return budget

    # --------------------------------------------------------------- new weights (rollout workers)
    def weights_spec(self) -> dict:
        """name -> (shape, dtype) of the model's weights, by Hugging Face state-dict names: what
        a payload of new weights must hold (spo_cli.serve.weights.check_fits)."""
        raise NotImplementedError(f"the {self.backend} backend cannot take new weights")

    def load_weights(self, tensors: dict) -> None:
        """Load checked tensors (every name of weights_spec, any float dtype) into the model that
        samples, in place; the next generate() uses them."""
        raise NotImplementedError(f"the {self.backend} backend cannot take new weights")

    @property
    def weights_dtype(self) -> str:
        """The dtype the model computes in ("float32", "bfloat16", ...): learners send weights
        in it."""
        return "float32"

    def formatter(self):
        """The PromptFormatter of the current options: how this sampler formats a prompt."""
        from spo_cli.sampling.prompts import PromptFormatter

        return PromptFormatter(self.tokenizer, system=self.opts.system, template=self.opts.template,
                               use_chat_template=self.opts.use_chat_template)

    def rows(self, problems: Iterable[dict], n: int | None = None) -> list[Row]:
        n = self.opts.n if n is None else n
        fmt = self.formatter()
        out = []
        for problem in problems:
            pid = problem.get("id")
            if not isinstance(pid, str):
                raise BadInput(f"a problem without a string 'id': {str(problem)[:80]}")
            text, ids = fmt(problem)
            for k in range(n):
                s = sample_seed(self.opts.seed, pid, k)
                out.append(Row(problem, k, text, ids, sample_temperature(self.opts, s), s))
        return out

    def decode(self, ids: Sequence[int]) -> str:
        """Response text: the decoded ids, special tokens (EOS) left out, spaces untouched."""
        from spo_cli.tokens import decode_response

        return decode_response(self.tokenizer, ids)

    def record(self, row: Row, gen: Generation) -> dict:
        from spo_cli.schema import new_trajectory

        sampler = {
            "model": self.model_name,
            "temperature": row.temperature,
            "top_p": self.opts.top_p,
            "seed": self.opts.seed,
            "index": row.index,
            "backend": self.backend,
            "max_new_tokens": self.opts.max_new_tokens,
        }
        return new_trajectory(
            problem_id=row.problem["id"],
            prompt=row.prompt,
            response=self.decode(gen.response_ids),
            prompt_ids=list(row.prompt_ids),
            response_ids=list(gen.response_ids),
            tokenizer=self.fingerprint,
            logprobs=list(gen.logprobs),
            source=self.opts.source,
            policy_version=self.opts.policy_version,
            sampler=sampler,
            finish_reason=gen.finish_reason,
        )

    def sample(self, problems: Iterable[dict], n: int | None = None) -> list[dict]:
        """Trajectories for every problem (n each; default opts.n), in problem order."""
        rows = self.rows(problems, n)
        gens = self.generate(rows)
        return [self.record(r, g) for r, g in zip(rows, gens)]

    def iter_sample(self, problems: Iterable[dict], n: int | None = None,
                    window_rows: int | None = None) -> Iterator[dict]:
        """Stream trajectories: problems are taken in windows of about `window_rows` samples
        (default 8 batches), sorted by prompt length inside a window, and written in input order.
        If reading the problems fails with BadInput, the problems read before it are still
        sampled and yielded, then the error propagates (nothing read is lost)."""
        n = self.opts.n if n is None else n
        window_rows = window_rows or 8 * self.opts.batch_size
        per_window = max(1, window_rows // n)
        chunk: list[dict] = []
        it = iter(problems)
        while True:
            try:
                problem = next(it)
            except StopIteration:
                break
            except BadInput:
                if chunk:
                    yield from self.sample(chunk, n)
                raise
            chunk.append(problem)
            if len(chunk) >= per_window:
                yield from self.sample(chunk, n)
                chunk = []
        if chunk:
            yield from self.sample(chunk, n)
