"""The paper's central claim in miniature: SPO learns pi* from off-policy data alone.

A tabular policy (one row of logits per internal node of an enumerable token tree, 31 responses)
starts at pi_ref and is trained full-batch on data that never comes from pi_theta: responses
weighted uniformly, or by a sample drawn from a different fixed policy. Every SPO objective
converges to pi* (Eq 2). With V_hat off by delta, the fixed point is predicted and checked. A
policy gradient given the same data without correction converges elsewhere.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pytest
import torch

from spo_cli.core.ppo import gae, importance_weights, kl_penalized_rewards, ppo_policy_loss
from spo_cli.core.spo import SPOBatch, parse_objective, sigmoid_bce_loss, squared_loss, terminal_q
from spo_cli.core.toy import TokenTree, kl
from tests.tinymodel_util import one_thread  # noqa: F401 (autouse fixture: one torch thread)

F64 = torch.float64
BETA = 0.5
STEPS = 600


@dataclass
class Problem:
    tree: TokenTree
    ref: torch.Tensor  # (N, V) reference logits
    reward: torch.Tensor  # (S,) judge reward in [0, 1]
    star_seq: torch.Tensor  # (S,) log pi*(x)
    q_star: torch.Tensor  # (S, L+1) Q* of every prefix
    data: dict[str, torch.Tensor]  # name -> (S,) data weights, never pi_theta

    @property
    def v_star(self) -> float:
        return float(self.q_star[0, 0])

    def ref_tok(self) -> torch.Tensor:
        return self.tree.token_logp(self.ref)


def make_problem(seed: int, binary: bool) -> Problem:
    g = torch.Generator().manual_seed(seed)
    tree = TokenTree.build(vocab=3, max_len=4)
    s = tree.n_responses
    ref = 1.5 * torch.randn(tree.n_nodes, tree.vocab, generator=g, dtype=F64)
    reward = torch.rand(s, generator=g, dtype=F64)
    reward = (reward < 0.4).to(F64) if binary else reward
    r = reward - 1.0
    other = tree.seq_logp(0.7 * torch.randn(tree.n_nodes, tree.vocab, generator=g, dtype=F64)).exp()  # a fixed policy
    counts = torch.bincount(torch.multinomial(other, 20_000, replacement=True, generator=g), minlength=s)
    assert (counts > 0).all()  # every response seen at least once
    data = {"uniform": torch.full((s,), 1.0 / s, dtype=F64), "other-policy-sample": counts.to(F64) / counts.sum()}
    return Problem(tree, ref, reward, tree.seq_logp(tree.optimal_logits(ref, r, BETA)), tree.soft_q(ref, r, BETA), data)


@functools.cache
def problem(kind: str) -> Problem:
    return make_problem(0, binary=True) if kind == "binary" else make_problem(1, binary=False)


def exact_mc_targets(p: Problem, g: torch.Generator):
    """Sparse PTS-like targets: the whole response plus a random subset of earlier boundaries,
    each with the exact success probability of the prefix under pi_ref (docs/math.md §6-7)."""
    tree = p.tree
    e1 = torch.exp(torch.tensor(-1 / BETA, dtype=F64))
    p_success = (((p.q_star / BETA).exp() - e1) / (1 - e1)).clamp(0, 1)  # invert Q* = beta log(p + (1-p)e^{-1/beta})
    ks = torch.arange(tree.max_len + 1).expand(tree.n_responses, -1)
    valid = (ks <= tree.lengths.unsqueeze(-1)) & ((torch.rand(ks.shape, generator=g) < 0.5) | (ks == tree.lengths.unsqueeze(-1)))
    return ks.contiguous(), p_success, valid


def spo_batch(p: Problem, theta: torch.Tensor, weight: torch.Tensor, v_hat: float, mc=None, source=None) -> SPOBatch:
    s = p.tree.n_responses
    idx, pr, valid = mc if mc is not None else (None, None, None)
    return SPOBatch(
        logp=p.tree.token_logp(theta), ref_logp=p.ref_tok(), mask=p.tree.mask, reward=p.reward,
        v_hat=torch.full((s,), v_hat, dtype=F64), mc_index=idx, mc_p=pr, mc_valid=valid,
        weight=weight * s, source=source,  # weight * s: the batch mean is sum_x data(x) * loss(x)
    )


def train(p: Problem, objective, batch_fn, steps: int = STEPS, lr: float = 0.1) -> torch.Tensor:
    """Full-batch Adam with a cosine schedule from theta = pi_ref; returns the trained logits."""
    theta = p.ref.clone().requires_grad_()
    opt = torch.optim.Adam([theta], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        loss = objective(batch_fn(theta))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return theta.detach()


def kl_to_star(p: Problem, theta: torch.Tensor) -> float:
    return float(kl(p.star_seq, p.tree.seq_logp(theta)))


# ------------------------------------------------------------------------------ SPO converges to pi*

SPECS = [
    "terminal:sq", "terminal:ce", "terminal:sig", "nonterminal:sq", "nonterminal:ce",
    "advantage", "mc:sq", "mc:ce", "terminal:ce*0.5+mc:ce",
]


@pytest.mark.parametrize("data", ["uniform", "other-policy-sample"])
@pytest.mark.parametrize("spec", SPECS)
def test_every_spo_objective_learns_pi_star_from_off_policy_data(spec, data):
    p = problem("binary" if "mc" in spec else "graded")  # mc targets assume a binary reward
    mc = exact_mc_targets(p, torch.Generator().manual_seed(2)) if "mc" in spec else None
    objective = parse_objective(spec, beta=BETA)
    assert kl_to_star(p, p.ref) > 0.1  # pi_ref is far from pi*
    theta = train(p, objective, lambda th: spo_batch(p, th, p.data[data], p.v_star, mc))
    assert kl_to_star(p, theta) < 1e-3
    # Theorem 2.1: the learnt Q-values are Q*: the terminal ones are the rewards, also on responses
    # too rare under pi* to matter for the KL (there ce converges slowest: 1e-2 after 600 steps)
    q_t = terminal_q(p.tree.token_logp(theta), p.ref_tok(), p.tree.mask, torch.full((p.tree.n_responses,), p.v_star, dtype=F64), BETA)
    initial = terminal_q(p.ref_tok(), p.ref_tok(), p.tree.mask, torch.full((p.tree.n_responses,), p.v_star, dtype=F64), BETA)
    assert (initial - (p.reward - 1)).abs().max() > 0.3
    assert (q_t - (p.reward - 1)).abs().max() < 3e-2


def test_objectives_chosen_per_data_source_learn_pi_star_together():
    """Half offline rows (uniform data, terminal:sq) and half PTS rows (another policy, mc:ce)."""
    p = problem("binary")
    mc = exact_mc_targets(p, torch.Generator().manual_seed(3))
    objective = parse_objective("offline=terminal:sq,pts=mc:ce", beta=BETA)
    s = p.tree.n_responses

    def batch(theta):
        one = spo_batch(p, theta, p.data["uniform"], p.v_star, mc)
        two = spo_batch(p, theta, p.data["other-policy-sample"], p.v_star, mc)
        fields = {k: torch.cat([getattr(one, k), getattr(two, k)]) for k in ("logp", "ref_logp", "mask", "reward", "v_hat", "mc_index", "mc_p", "mc_valid", "weight")}
        return SPOBatch(**fields, source=["offline"] * s + ["pts"] * s)

    theta = train(p, objective, batch)
    assert kl_to_star(p, theta) < 1e-3


def test_mc_targets_from_few_rollouts_are_unbiased_under_ce_but_not_under_sq():
    """docs/math.md §6: p_hat from n rollouts is noisy; exp(y/beta) = p_hat + (1-p_hat)e^{-1/beta} is linear
    in p_hat, so the expected ce loss equals the ce loss at the true p, while the squared loss on
    y = beta log(...) sees a target biased low (Jensen). Each (response, boundary) appears once per
    binomial outcome of n = 3 rollouts, weighted by its probability: the exact expectation over noise.
    """
    p, n = problem("binary"), 3
    tree = p.tree
    e1 = torch.exp(torch.tensor(-1 / BETA, dtype=F64))
    p_true = (((p.q_star / BETA).exp() - e1) / (1 - e1)).clamp(0, 1)  # (S, L+1)
    rows, ks, phat, weight = [], [], [], []
    for s_ in range(tree.n_responses):
        length = int(tree.lengths[s_])
        for k in range(1, length + 1):
            pk = float(p_true[s_, k])
            outcomes = [(1.0 if p.reward[s_] > 0 else 0.0, 1.0)] if k == length else [
                (j / n, torch.distributions.Binomial(n, probs=torch.tensor(pk)).log_prob(torch.tensor(float(j))).exp().item())
                for j in range(n + 1)
            ]
            for ph, w in outcomes:
                rows.append(s_)
                ks.append(k)
                phat.append(ph)
                weight.append(w / tree.n_responses)  # uniform over responses and boundaries' outcomes
    rows_t = torch.tensor(rows)
    idx = torch.tensor(ks).unsqueeze(-1)
    pr = torch.tensor(phat, dtype=F64).unsqueeze(-1)
    w = torch.tensor(weight, dtype=F64)

    def batch(theta):
        full = spo_batch(p, theta, p.data["uniform"], p.v_star)
        return SPOBatch(
            logp=full.logp[rows_t], ref_logp=full.ref_logp[rows_t], mask=full.mask[rows_t], reward=full.reward[rows_t],
            v_hat=full.v_hat[rows_t], mc_index=idx, mc_p=pr, mc_valid=torch.ones_like(idx, dtype=torch.bool),
            weight=w * len(rows),
        )

    ce = kl_to_star(p, train(p, parse_objective("mc:ce", beta=BETA), batch))
    sq = kl_to_star(p, train(p, parse_objective("mc:sq", beta=BETA), batch))
    assert ce < 1e-3
    assert sq > 100 * ce and sq > 5e-4  # measured: ce 5e-6, sq 1.5e-3


# ------------------------------------------------------------------------------ biased V_hat


def sequence_level_minimiser(p: Problem, loss, weight: torch.Tensor, delta: float) -> torch.Tensor:
    """argmin over response distributions q of sum_x w(x) loss(Q(x), r(x)), Q(x) = V* + delta + beta log(q/pi_ref).

    Solved directly over the simplex (S free logits, L-BFGS from pi*), independently of the token
    tree and of cumulative_q. Returns log q (S,).
    """
    r = p.reward - 1
    ref_seq = p.tree.seq_logp(p.ref)
    z = p.star_seq.clone().requires_grad_()
    opt = torch.optim.LBFGS([z], lr=1, max_iter=500, tolerance_grad=1e-14, tolerance_change=1e-16, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        q = p.v_star + delta + BETA * (torch.log_softmax(z, -1) - ref_seq)
        value = (weight * loss(q, r)).sum()
        value.backward()
        return value

    opt.step(closure)
    return torch.log_softmax(z.detach(), -1)


@pytest.mark.parametrize("delta", [0.1, -0.1])
def test_biased_v_hat_fixed_point_is_predicted(delta):
    """With V_hat = V* + delta no policy satisfies Eq 13 everywhere (Theorem 2.4); what is learnt
    instead is the constrained minimiser of the expected terminal loss. Stationarity over the
    simplex predicts, for every response x:

        data(x) * dloss/dQ(x) / pi_theta(x) is the same for all x,   Q(x) = r(x) + delta + beta log(pi_theta/pi*)(x)

    so with data from pi* itself (a fixed policy that is not pi_theta) the squared loss leaves the
    policy at pi* and puts the whole bias into the Q-values (every terminal residual = delta); with
    other data pi_theta moves away from pi*, to the distribution `sequence_level_minimiser` finds.
    """
    p = problem("graded")
    s = p.tree.n_responses
    v_hat = p.v_star + delta
    data = {**p.data, "pi-star": p.star_seq.exp()}
    kls = {}
    for spec, loss in [("terminal:sq", squared_loss), ("terminal:sig", sigmoid_bce_loss), ("advantage", None)]:
        for name, w in data.items():
            theta = train(p, parse_objective(spec, beta=BETA), lambda th, w=w: spo_batch(p, th, w, v_hat))
            seq = p.tree.seq_logp(theta)
            q_t = terminal_q(p.tree.token_logp(theta), p.ref_tok(), p.tree.mask, torch.full((s,), v_hat, dtype=F64), BETA)
            residual = q_t - (p.reward - 1)
            assert torch.allclose(residual, delta + BETA * (seq - p.star_seq), atol=1e-12)  # exact identity
            # stationarity law: advantage regression has y_hat = Q - V_hat, target r - V_hat: the same law as terminal:sig
            fn = loss or sigmoid_bce_loss
            shift = 0.0 if loss else v_hat
            qq = (q_t - shift).clone().requires_grad_()
            (dq,) = torch.autograd.grad((w * fn(qq, p.reward - 1 - shift)).sum(), qq)
            law = dq / seq.exp()
            assert (law.max() - law.min()).abs() < 1e-6 * law.abs().max() + 1e-9, (spec, name)
            kls[spec, name] = kl_to_star(p, theta)
            if spec == "terminal:sq":
                predicted = sequence_level_minimiser(p, squared_loss, w, delta)
                assert (seq.exp() - predicted.exp()).abs().max() < 1e-6, name
                if name == "pi-star":
                    assert kls[spec, name] < 1e-8 and torch.allclose(residual, torch.full_like(residual, delta), atol=1e-5)
                else:
                    assert kls[spec, name] > 1e-4  # the bias does reach the policy
    # biased V_hat costs orders of magnitude in KL compared with V_hat = V* (< 1e-3 above)
    assert kls["terminal:sq", "uniform"] > 1e-3


# ------------------------------------------------------------------------------ the contrast: policy gradient


def pg_train(p: Problem, weights_fn, steps: int = STEPS) -> torch.Tensor:
    """REINFORCE on the KL-regularised per-token reward (ppo.py pieces, GAE with lambda = 1 and no
    critic, ratio 1), on every response weighted by weights_fn(theta) (S,), treated as data weights."""
    ref_tok = p.ref_tok()

    def objective(theta):
        logp = p.tree.token_logp(theta)
        rewards = kl_penalized_rewards(p.reward, logp.detach(), ref_tok, p.tree.mask, BETA)
        adv, _ = gae(rewards, torch.zeros_like(rewards), p.tree.mask, gamma=1.0, lam=1.0)
        per_token = ppo_policy_loss(logp, logp.detach(), adv, p.tree.mask, clip_eps=0.2).per_token
        return (weights_fn(theta).detach() * per_token.sum(-1)).sum()

    return train(p, objective, lambda theta: theta, steps=steps)


@pytest.mark.parametrize("data", ["uniform", "other-policy-sample"])
def test_policy_gradient_on_the_same_off_policy_data_does_not_converge_to_pi_star(data):
    p = problem("graded")
    on_policy = pg_train(p, lambda th: p.tree.seq_logp(th).exp())
    assert kl_to_star(p, on_policy) < 1e-3  # the same code, fed pi_theta's own distribution, does
    off = pg_train(p, lambda th: p.data[data])
    assert kl_to_star(p, off) > 0.02  # fed the data SPO learns from, it settles elsewhere (KL 0.39 / 0.05)
    # with the importance weight pi_theta(x)/data(x) (per-token weights multiplied along x) it is corrected
    data_logp = torch.log(p.data[data])

    def corrected(th):
        tok = p.tree.token_logp(th)
        per_tok_data = torch.zeros_like(tok)
        per_tok_data[:, 0] = data_logp  # the data's log-prob of x, put on its first token
        w = importance_weights(tok, per_tok_data, p.tree.mask).prod(-1)  # pi_theta(x) / data(x)
        return p.data[data] * w

    assert kl_to_star(p, pg_train(p, corrected)) < 1e-3
