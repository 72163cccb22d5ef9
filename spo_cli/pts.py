"""Pivotal Token Search (docs/math.md §8; the paper Sec 3.1.3, after the Phi-4 report).

For a trajectory x0, x_1..x_T, p(k) is the success probability of the reference policy continuing
the prefix of the first k response tokens, estimated from N rollouts (sampled, then judged).
PTS bisects the response where p changes by at least p_gap:

    subdivide(a, b):                               # the span of tokens a..b-1, p(a), p(b) known
        if b - a <= 1 or |p(b) - p(a)| < p_gap: stop (b - a == 1 with |dp| >= p_gap: pivotal token a)
        m = split(a, b)                            # cumulative log-prob midpoint (or token midpoint)
        subdivide(a, m); subdivide(m, b)

Every p_hat estimated on the way becomes an `mc` target [k, p_hat, n_rollouts] (token_index k =
the prefix of the first k response tokens, see spo_cli.core.spo point 5), and the pivotal tokens
are listed with their delta p in `pivotal`. `PivotalSearch` is that recursion as a pure state
machine (no model, no judge); `pivotal_token_search` drives many of them at once so that the
rollouts of several trajectories are sampled in one batch and judged in parallel.

    from spo_cli.pts import PTSOptions, PrefixRollouts, pivotal_token_search
    rollouts = PrefixRollouts(HFSampler.from_pretrained(ref_dir, SampleOptions()))
    for rec in pivotal_token_search(trajs, problems_by_id, rollouts, Judge(), PTSOptions(), values=values):
        ...

Where this departs from the paper / Phi-4, or chooses where they are silent:
- The recursion is run breadth-first (all spans of one depth at once), so a round of rollouts
  serves many spans and trajectories; without a budget the result is the same as depth-first
  (every p(k) is memoised and seeded by (seed, trajectory, k, i), so it does not depend on order).
  With a budget, coarse spans are resolved before fine ones.
- p(T) of the whole response is its own judged outcome (reward 1 or not), not a rollout estimate:
  the response is complete. It is not written as an `mc` target (it would repeat the terminal
  objective); k = 0 is, and comes from the problem's Value record (p_hat of K samples) when the
  Value has one, since it is the same quantity estimated from many more samples.
- Split "logprob": m in (a, b) that makes the surprisal (sum of -log pi_ref) of a..m-1 closest to
  half of a..b-1; ties go to the token midpoint. pi_ref's log-probs come from `ref_logprobs` on
  the record, else a teacher-forced pass of the reference model.
- Rollouts sample pi_ref itself (temperature 1, top-p 1 by default), since p(k) is a
  probability under pi_ref. A rollout may use the response's remaining token budget
  (max(max_new_tokens, T) - k, at least 1), so prefix + continuation is never longer than a
  sampled response could be, nor shorter than the response searched.
- Success = reward 1 (every test passed); rollouts with judge errors (JE) are left out of n.
- A trajectory whose id (problem + response) was already searched is skipped: its search would
  repeat the first one exactly (same seeds), and small models repeat their answers a lot.
- Trajectories whose ids are of another tokenizer (or absent) are re-tokenized with the
  reference tokenizer by spo_cli.tokens, exactly as the trainer re-tokenizes them: the prompt
  formatted as `spo sample` would, the response ended with EOS unless it was cut at the token
  budget (so p(T) is the outcome of the complete response, and the EOS can be pivotal). Their
  `logprobs` (of the old tokens) are then dropped, and the record says so in `pts.retokenized`;
  the record is stamped with the reference tokenizer's fingerprint and the new ids, which a
  trainer with the same tokenizer then keeps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from spo_cli.errors import BadInput, SpoError
from spo_cli.judge.outcome import is_success, judged_reward

MC_FIELD = "mc"
PIVOTAL_FIELD = "pivotal"  # [{index, token_id, token, p_before, p_after, delta}, ...]
PTS_FIELD = "pts"  # what the search did: rollouts, n, p_gap, split, budget_exhausted, ...
ROLLOUT_FIELD = "pts_prefix"  # on a rollout: {"trajectory": id, "k": prefix length}


@dataclass(frozen=True)
class PTSOptions:
    n_rollouts: int = 10
    """N: rollouts per prefix estimate."""
    p_gap: float = 0.2
    """Split a span while |p(end) - p(start)| >= p_gap (Phi-4: 0.2)."""
    split: str = "logprob"
    """'logprob' (cumulative log-prob midpoint) or 'token' (token midpoint)."""
    budget: int = 300
    """Most rollouts per trajectory."""
    p_range: tuple[float, float] | None = (0.2, 0.8)
    """Search only trajectories of problems whose p_hat lies in [lo, hi] (None: all)."""
    successful_only: bool = True
    """Search only successful trajectories (reward 1)."""
    temperature: float = 1.0
    """Rollout temperature (1 = pi_ref itself)."""
    max_new_tokens: int = 512
    """Most response tokens of prefix + continuation."""
    seed: int = 0
    """Rollout i of prefix k of trajectory t is seeded by (seed, t, k, i)."""
    concurrent: int = 8
    """Trajectories searched at once (their rollouts share sampling batches)."""
    prompt_p_from_values: bool = True
    """Take p(0) from the Value record's p_hat when it has one."""

    def __post_init__(self) -> None:
        if self.n_rollouts < 1:
            raise ValueError(f"n_rollouts must be >= 1, got {self.n_rollouts}")
        if not 0 < self.p_gap <= 1:
            raise ValueError(f"p_gap must be in (0, 1], got {self.p_gap}")
        if self.split not in ("logprob", "token"):
            raise ValueError(f"split must be logprob or token, got {self.split!r}")
        if self.budget < self.n_rollouts:
            raise ValueError(f"the budget ({self.budget}) must allow at least one estimate of "
                             f"{self.n_rollouts} rollouts")
        if self.p_range is not None and not 0 <= self.p_range[0] <= self.p_range[1] <= 1:
            raise ValueError(f"p_range needs 0 <= lo <= hi <= 1, got {self.p_range}")
        if self.concurrent < 1:
            raise ValueError("concurrent must be >= 1")


# ---------------------------------------------------------------------------------------------
# The search itself (pure)


def split_point(a: int, b: int, surprisal_cum: Sequence[float] | None) -> int:
    """Where to split the span of tokens a..b-1 (b - a >= 2): a point m with a < m < b.

    surprisal_cum: (T+1,) cum[k] = sum_{s<k} -log pi_ref(x_s | x_<s), or None for the token
    midpoint. With it, m makes cum[m] - cum[a] closest to half of cum[b] - cum[a]; ties go to the
    token midpoint.
    """
    if b - a < 2:
        raise ValueError(f"cannot split a span of {b - a} token(s)")
    mid = (a + b) / 2
    if surprisal_cum is None:
        return (a + b) // 2
    target = (surprisal_cum[a] + surprisal_cum[b]) / 2
    best, key = a + 1, (math.inf, math.inf)
    for m in range(a + 1, b):
        k = (round(abs(surprisal_cum[m] - target), 9), abs(m - mid))
        if k < key:
            best, key = m, k
    return best


class PivotalSearch:
    """The bisection of one response as a state machine, breadth-first:

        s = PivotalSearch(T, p_gap=0.2, surprisal_cum=cum)
        s.known(T, 1.0, 0)                     # p of the whole response: its own outcome
        while need := s.pending():             # prefix lengths whose p is needed next
            for k in need: s.known(k, p_hat, n)
        s.pivotal                              # [(k, p_before, p_after)], token k is pivotal
    """

    def __init__(self, length: int, *, p_gap: float, surprisal_cum: Sequence[float] | None = None):
        self.length = length
        self.p_gap = p_gap
        self.cum = surprisal_cum
        self.est: dict[int, tuple[float, int]] = {}
        self.frontier: list[tuple[int, int]] = [(0, length)] if length > 0 else []
        self.pivotal: list[tuple[int, float, float]] = []

    def known(self, k: int, p_hat: float, n: int) -> None:
        self.est[k] = (float(p_hat), int(n))

    def p(self, k: int) -> float:
        return self.est[k][0]

    def _advance(self) -> None:
        changed = True
        while changed:
            changed = False
            nxt: list[tuple[int, int]] = []
            for a, b in self.frontier:
                if a not in self.est or b not in self.est:
                    nxt.append((a, b))
                    continue
                pa, pb = self.p(a), self.p(b)
                if abs(pb - pa) < self.p_gap:
                    continue
                if b - a == 1:
                    self.pivotal.append((a, pa, pb))
                    continue
                m = split_point(a, b, self.cum)
                nxt += [(a, m), (m, b)]
                changed = True
            self.frontier = nxt
        self.pivotal.sort()

    def pending(self) -> list[int]:
        """Prefix lengths whose p is needed to go on (empty: the search is complete)."""
        self._advance()
        return sorted({x for span in self.frontier for x in span if x not in self.est})

    @property
    def done(self) -> bool:
        return not self.pending()


# ---------------------------------------------------------------------------------------------
# Rollouts from a token prefix, with any sampling backend


@dataclass
class PrefixRequest:
    problem: dict
    prompt_text: str
    prompt_ids: list[int]
    prefix_ids: list[int]
    key: str  # seeds rollouts: sample_seed(seed, key, i)
    n: int
    budget: int  # most new tokens


class PrefixRollouts:
    """Continues token prefixes with a spo_cli.sampling Sampler (hf, vllm or any subclass).

    A sampler's `generate(rows)` turns prompt ids into response ids; a prefix is just a longer
    prompt (prompt ids + the first k response ids), so no backend needs changing. Per-row token
    budgets: the batch is generated with the largest budget and each row is cut at its own (each
    row draws from its own seeded generator, so this equals generating with the smaller budget).
    """

    def __init__(self, sampler, *, temperature: float = 1.0, seed: int = 0):
        from spo_cli.tokens import Tokens

        self.sampler = sampler
        self.tokenizer = sampler.tokenizer
        self.fingerprint = sampler.fingerprint
        self.tokens = Tokens(sampler.tokenizer, sampler.formatter(), sampler.fingerprint)
        self.temperature = temperature
        self.seed = seed
        self.generated_tokens = 0
        self.rollouts = 0

    def continue_prefixes(self, reqs: Sequence[PrefixRequest]):
        """-> one list of Generations (continuations only) per request."""
        from spo_cli.sampling.base import Generation, Row, sample_seed

        rows, budgets = [], []
        for r in reqs:
            ids = list(r.prompt_ids) + list(r.prefix_ids)
            for i in range(r.n):
                rows.append(Row(r.problem, i, r.prompt_text, ids, self.temperature,
                                sample_seed(self.seed, r.key, i)))
                budgets.append(max(1, r.budget))
        if not rows:
            return []
        old = self.sampler.opts
        self.sampler.opts = old.with_(max_new_tokens=max(budgets))
        try:
            gens = self.sampler.generate(rows)
        finally:
            self.sampler.opts = old
        out, j = [], 0
        for r in reqs:
            mine = []
            for _ in range(r.n):
                g, b = gens[j], budgets[j]
                if len(g.response_ids) > b:
                    g = Generation(g.response_ids[:b], g.logprobs[:b], "length", g.meta)
                self.generated_tokens += len(g.response_ids)
                mine.append(g)
                j += 1
            out.append(mine)
        self.rollouts += len(rows)
        return out

    def score(self, prompt_ids: Sequence[int], response_ids: Sequence[int]) -> list[float] | None:
        """log pi_ref of each response token (teacher forcing), or None if the backend cannot."""
        if not response_ids:
            return []
        got = self.sampler.score(prompt_ids, response_ids)
        return None if got is None else list(got)

    def decode(self, ids: Sequence[int]) -> str:
        return self.sampler.decode(ids)


# ---------------------------------------------------------------------------------------------
# Driving many searches: sample, judge, feed


@dataclass
class PTSStats:
    seen: int = 0
    searched: int = 0
    skipped_failed: int = 0
    skipped_range: int = 0
    skipped_missing_value: int = 0
    dropped_after_estimate: int = 0
    retokenized: int = 0
    duplicates: int = 0
    rollouts: int = 0
    judge_errors: int = 0
    pivotal: int = 0
    budget_exhausted: int = 0
    p_hats: list[float] = field(default_factory=list)  # every p_hat estimated (for a histogram)


@dataclass
class _Job:
    traj: dict
    problem: dict
    prompt_text: str
    prompt_ids: list[int]
    response_ids: list[int]
    ref_logprobs: list[float] | None
    search: PivotalSearch
    retokenized: bool
    check_range_at_0: bool  # p(0) was unknown (missing value, 'estimate'): filter once estimated
    used: int = 0
    exhausted: bool = False


def _surprisal_cum(logps: Sequence[float]) -> list[float]:
    cum = [0.0]
    for lp in logps:
        cum.append(cum[-1] - float(lp))
    return cum


def _in_range(p: float, rng: tuple[float, float] | None) -> bool:
    return rng is None or rng[0] - 1e-12 <= p <= rng[1] + 1e-12


def pivotal_token_search(trajectories: Iterable[dict], problems_by_id: Mapping[str, dict],
                         rollouts: PrefixRollouts, judge: Callable, opts: PTSOptions = PTSOptions(), *,
                         values: Mapping[str, dict] | None = None, missing: str = "error",
                         stats: PTSStats | None = None, limit: int | None = None,
                         on_rollouts: Callable[[list[dict]], None] | None = None,
                         on_progress: Callable[[str, int], None] | None = None) -> Iterator[dict]:
    """Search each selected trajectory; yield it with `mc`, `pivotal` and `pts` set (in the order
    the searches finish).

    judge(trajectories, problems_by_id) -> judged trajectories (spo_cli.judge.client.Judge or a stand-in).
    values: Value records by problem_id (for the p_range filter and p(0)); `missing` says what a
    problem without one gets: 'error' (BadInput naming it), 'estimate' (p(0) from N rollouts,
    then the filter) or 'skip'. on_rollouts gets every batch of judged rollouts (source
    pts-rollout); on_progress(event, count) with event 'rollouts' or 'trajectory'. limit: start
    at most this many searches (no more input is read after that).
    """
    stats = stats if stats is not None else PTSStats()
    if missing not in ("error", "estimate", "skip"):
        raise ValueError(f"missing must be error, estimate or skip, got {missing!r}")
    if values is None and opts.p_range is not None and missing == "error":
        raise BadInput("PTS selects problems by p_hat: give Value records, or choose "
                       "--missing-value estimate, or --p-range 0,1")
    source_iter = iter(trajectories)
    active: list[_Job] = []
    exhausted_input = False
    searched_ids: set[str] = set()  # the same response to the same problem gets one search

    def prepare(t: dict) -> _Job | None:
        stats.seen += 1
        reward = judged_reward(t)
        if reward is None:
            stats.judge_errors += 1  # JE: its outcome p(T) is unknown
            return None
        if opts.successful_only and not is_success(reward):
            stats.skipped_failed += 1
            return None
        if t.get("id") in searched_ids:
            stats.duplicates += 1
            return None
        pid = t["problem_id"]
        problem = problems_by_id.get(pid)
        if problem is None:
            raise BadInput(f"trajectory {t.get('id')!r}: problem {pid!r} is not among the problems given")
        value = values[pid] if values is not None and pid in values else None
        p0 = value.get("p_hat") if value is not None else None
        check_later = False
        if p0 is None and (values is not None or opts.p_range is not None):  # a value was expected
            if missing == "error":
                raise BadInput(f"no value (p_hat) for problem {pid!r}: estimate it with `spo estimate-v`, "
                               "or choose --missing-value estimate or skip")
            if missing == "skip":
                stats.skipped_missing_value += 1
                return None
            check_later = opts.p_range is not None
        elif p0 is not None and not _in_range(p0, opts.p_range):
            stats.skipped_range += 1
            return None
        # Token ids in the reference tokenizer (spo_cli.tokens: the trainer's rule, EOS included).
        ids = rollouts.tokens.trajectory(t, problem)
        prompt_text, prompt_ids, response_ids = ids.prompt_text, ids.prompt_ids, ids.response_ids
        retok = not ids.reused
        stats.retokenized += int(retok)
        T = len(response_ids)
        ref_lp = None
        if not retok and isinstance(t.get("ref_logprobs"), list) and len(t["ref_logprobs"]) == T:
            ref_lp = list(t["ref_logprobs"])
        elif opts.split == "logprob" or on_rollouts is not None:
            ref_lp = rollouts.score(prompt_ids, response_ids)
        cum = None
        if opts.split == "logprob":
            if ref_lp is None:
                raise SpoError("the log-prob split needs the reference model's log-probs; this backend "
                               "cannot score, use --split token")
            cum = _surprisal_cum(ref_lp)
        search = PivotalSearch(T, p_gap=opts.p_gap, surprisal_cum=cum)
        search.known(T, float(is_success(reward)), 0)
        if p0 is not None and opts.prompt_p_from_values and T > 0:
            search.known(0, float(p0), int(value.get("k") or 0))
        stats.searched += 1
        searched_ids.add(t.get("id"))
        return _Job(t, problem, prompt_text, prompt_ids, response_ids, ref_lp, search, retok, check_later)

    def finish(job: _Job) -> dict:
        s = job.search
        mc = [[k, p, n] for k, (p, n) in sorted(s.est.items()) if k < len(job.response_ids)]
        piv = []
        for k, pa, pb in s.pivotal:
            tid = job.response_ids[k]
            piv.append({"index": k, "token_id": tid, "token": rollouts.decode([tid]),
                        "p_before": pa, "p_after": pb, "delta": pb - pa})
        stats.pivotal += len(piv)
        stats.budget_exhausted += int(job.exhausted)
        out = dict(job.traj)
        meta = {"rollouts": job.used, "n": opts.n_rollouts, "p_gap": opts.p_gap, "split": opts.split,
                "budget": opts.budget, "budget_exhausted": job.exhausted, "seed": opts.seed,
                "source": job.traj.get("source")}
        if job.retokenized:
            meta["retokenized"] = True
            out.update(prompt=job.prompt_text, prompt_ids=job.prompt_ids, response_ids=job.response_ids,
                       tokenizer=rollouts.fingerprint, logprobs=None)
        if job.ref_logprobs is not None:
            out["ref_logprobs"] = job.ref_logprobs
        out.update({MC_FIELD: mc, PIVOTAL_FIELD: piv, PTS_FIELD: meta, "source": "pts"})
        if on_progress is not None:
            on_progress("trajectory", 1)
        return out

    while True:
        while not exhausted_input and len(active) < opts.concurrent:
            if limit is not None and stats.searched >= limit:
                exhausted_input = True
                break
            try:
                t = next(source_iter)
            except StopIteration:
                exhausted_input = True
                break
            job = prepare(t)
            if job is not None:
                active.append(job)
        if not active:
            return
        # One round: every active search asks for the prefixes it needs, within its budget.
        reqs: list[tuple[_Job, int]] = []
        still: list[_Job] = []
        for job in active:
            need = job.search.pending()
            if job.check_range_at_0 and 0 not in job.search.est:
                need = [0]  # estimate p(0) first, then decide whether to go on
            take = []
            for k in need:
                if job.used + (len(take) + 1) * opts.n_rollouts > opts.budget:
                    job.exhausted = True
                    break
                take.append(k)
            if not take:
                yield finish(job)
                continue
            reqs += [(job, k) for k in take]
            still.append(job)
        active = still
        if not reqs:
            continue
        results = _estimate(reqs, problems_by_id, rollouts, judge, opts, stats, on_rollouts)
        if on_progress is not None:
            on_progress("rollouts", len(reqs) * opts.n_rollouts)
        for (job, k), (p, n) in zip(reqs, results):
            job.used += opts.n_rollouts
            if n > 0:
                job.search.known(k, p, n)
                stats.p_hats.append(p)
            else:  # every rollout hit a judge error: p(k) unknown, stop this search
                job.exhausted = True
                job.search.frontier = []
        kept = []
        for job in active:
            if job.check_range_at_0 and 0 in job.search.est:
                job.check_range_at_0 = False
                if not _in_range(job.search.p(0), opts.p_range):
                    stats.dropped_after_estimate += 1
                    stats.searched -= 1
                    continue
            kept.append(job)
        active = kept


def _estimate(reqs: list[tuple[_Job, int]], problems_by_id, rollouts: PrefixRollouts, judge, opts: PTSOptions,
              stats: PTSStats, on_rollouts) -> list[tuple[float, int]]:
    """Sample N continuations of each requested prefix in one batch, judge them all, and
    return (p_hat, n) per request (n counts rollouts without judge errors)."""
    from spo_cli.schema import new_trajectory

    prs = []
    for job, k in reqs:
        prs.append(PrefixRequest(job.problem, job.prompt_text, job.prompt_ids, job.response_ids[:k],
                                 key=f"{job.traj.get('id')}@{k}", n=opts.n_rollouts,
                                 budget=max(opts.max_new_tokens, len(job.response_ids)) - k))
    gens = rollouts.continue_prefixes(prs)
    recs, owner = [], []
    for j, ((job, k), gs) in enumerate(zip(reqs, gens)):
        prefix = job.response_ids[:k]
        prefix_lp = job.ref_logprobs[:k] if job.ref_logprobs is not None else None
        for i, g in enumerate(gs):
            ids = prefix + list(g.response_ids)
            recs.append(new_trajectory(
                problem_id=job.traj["problem_id"], prompt=job.prompt_text,
                response=rollouts.decode(ids), prompt_ids=job.prompt_ids, response_ids=ids,
                tokenizer=rollouts.fingerprint,
                logprobs=(list(prefix_lp) + list(g.logprobs)) if prefix_lp is not None else None,
                source="pts-rollout", policy_version=0,
                sampler={"model": getattr(rollouts.sampler, "model_name", None),
                         "temperature": rollouts.temperature, "top_p": rollouts.sampler.opts.top_p,
                         "seed": opts.seed, "index": i, "backend": getattr(rollouts.sampler, "backend", None)},
                finish_reason=g.finish_reason,
                **{ROLLOUT_FIELD: {"trajectory": job.traj.get("id"), "k": k}},
            ))
            owner.append(j)
    judged = list(judge(recs, problems_by_id))
    stats.rollouts += len(judged)
    succ = [0] * len(reqs)
    n = [0] * len(reqs)
    for j, t in zip(owner, judged):
        r = t.get("reward")
        if r is None:
            stats.judge_errors += 1
            continue
        n[j] += 1
        succ[j] += int(is_success(r))
    if on_rollouts is not None:
        on_rollouts(judged)
    return [(succ[j] / n[j] if n[j] else 0.0, n[j]) for j in range(len(reqs))]
