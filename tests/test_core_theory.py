"""docs/math.md §§2-4 checked exactly on an enumerable token tree (every response listed).

Q*, V*, pi* come from enumeration (toy.TokenTree): a prefix's Q* sums over the responses that
extend it, pi* conditionals are marginals of pi_ref(x) exp(r/beta)/Z. The equations are then
results to check, not definitions. Q_theta always comes from spo.cumulative_q on the padded
layout a trainer would use.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from spo_cli.core.spo import cumulative_q, terminal_q
from spo_cli.core.toy import TokenTree, kl, soft_objective
from tests.tinymodel_util import one_thread  # noqa: F401 (autouse fixture: one torch thread)

F64 = torch.float64  # everything here is float64; the global default dtype is left alone
TOL = 1e-10


def problem(seed: int, vocab: int = 3, max_len: int = 4, beta: float = 0.7, binary: bool = False):
    g = torch.Generator().manual_seed(seed)
    tree = TokenTree.build(vocab, max_len)
    ref = 1.5 * torch.randn(tree.n_nodes, vocab, generator=g, dtype=F64)
    reward = torch.rand(tree.n_responses, generator=g, dtype=F64)  # judge reward in [0, 1]
    if binary:
        reward = (reward < 0.4).double()
    return tree, ref, reward - 1.0, beta, g  # r = reward - r_max (docs/math.md §1)


def q_theta_prefixes(tree: TokenTree, theta: torch.Tensor, ref: torch.Tensor, v_hat: float, beta: float):
    """[V_hat, Q_theta(x_1), ..., Q_theta(x_{1:L})] per response: (S, L+1), as from Eq 12."""
    q = cumulative_q(
        tree.token_logp(theta), tree.token_logp(ref), tree.mask, torch.full((tree.n_responses,), v_hat, dtype=F64), beta
    )
    return torch.cat([torch.full((tree.n_responses, 1), v_hat, dtype=F64), q], -1)


@pytest.mark.parametrize("seed", range(3))
def test_tree_lists_every_response_once(seed):
    tree, *_ = problem(seed)
    seen = {tuple(t[m].tolist()) for t, m in zip(tree.tokens, tree.mask)}
    expected = {
        s
        for n in range(1, tree.max_len + 1)
        for s in itertools.product(range(tree.vocab), repeat=n)
        if tree.eos not in s[:-1] and (s[-1] == tree.eos or n == tree.max_len)
    }
    assert seen == expected and len(seen) == tree.n_responses
    # a tabular policy is a distribution over the listed responses
    assert torch.allclose(tree.seq_logp(torch.randn(tree.n_nodes, tree.vocab, dtype=F64)).exp().sum(), torch.tensor(1.0, dtype=F64))


@pytest.mark.parametrize("seed", range(3))
def test_optimum_eq2_eq3_and_variational_identity_eq4(seed):
    tree, ref, r, beta, g = problem(seed)
    ref_seq = tree.seq_logp(ref)
    v_star = tree.soft_q(ref, r, beta)[0, 0]
    # Eq 3: V* = beta log E_ref[exp(r/beta)]
    assert torch.allclose(v_star, beta * torch.log((ref_seq.exp() * torch.exp(r / beta)).sum()), atol=TOL)
    star_seq = tree.seq_logp(tree.optimal_logits(ref, r, beta))
    # Eq 2: pi*(x) = pi_ref(x) exp(r/beta) / Z, Z = exp(V*/beta)
    assert torch.allclose(star_seq, ref_seq + (r - v_star) / beta, atol=TOL)
    # Eq 4: J(pi) = V* - beta KL(pi || pi*) for arbitrary policies, and J(pi*) = V* is the maximum
    for _ in range(5):
        seq = tree.seq_logp(2 * torch.randn(tree.n_nodes, tree.vocab, generator=g, dtype=F64))
        j = soft_objective(seq, ref_seq, r, beta)
        assert torch.allclose(j, v_star - beta * kl(seq, star_seq), atol=TOL)
        assert j < soft_objective(star_seq, ref_seq, r, beta)
    assert torch.allclose(soft_objective(star_seq, ref_seq, r, beta), v_star, atol=TOL)


@pytest.mark.parametrize("seed", range(3))
def test_token_level_optimum_eq5_to_eq10(seed):
    tree, ref, r, beta, _ = problem(seed)
    q = tree.soft_q(ref, r, beta)  # (S, L+1) Q* of every prefix
    star = tree.optimal_logits(ref, r, beta)
    log_ratio = tree.token_logp(star) - tree.token_logp(ref)  # (S, L) log pi*/pi_ref per token
    adv = torch.where(tree.mask, q[:, 1:] - q[:, :-1], 0.0)  # Eq 5: A_t = Q(x_{1:t}) - V(x_{<t})
    # Eq 6/7: beta log pi*/pi_ref = A, token by token on every response
    assert torch.allclose(beta * log_ratio, adv, atol=TOL)
    # Eq 8: path consistency on every interval (i, j]
    for i in range(tree.max_len + 1):
        for j in range(i, tree.max_len + 1):
            lhs = beta * log_ratio[:, i:j].sum(-1)
            ok = j <= tree.lengths
            assert torch.allclose(lhs[ok], (q[:, j] - q[:, i])[ok], atol=TOL)
    # Eq 9: forward Q = V + sum_{s<=t} A_s and backward Q = r - sum_{s>t} A_s
    assert torch.allclose(q[:, 1:], q[:, :1] + adv.cumsum(-1), atol=TOL)
    later = adv.sum(-1, keepdim=True) - adv.cumsum(-1)
    assert torch.allclose(q[:, 1:], r.unsqueeze(-1) - later, atol=TOL)
    # Eq 10: soft Bellman at every internal node, over all next tokens
    child, node_q = tree.child_values(q), tree.node_values(q)
    bellman = beta * torch.logsumexp(torch.log_softmax(ref, -1) + child / beta, -1)
    assert torch.allclose(bellman, node_q, atol=TOL)
    # Eq 6 in the other direction: pi* = pi_ref exp(A/beta) normalises at every node
    assert torch.allclose(torch.log_softmax(ref, -1) + (child - node_q.unsqueeze(-1)) / beta, torch.log_softmax(star, -1), atol=TOL)


@pytest.mark.parametrize("seed", range(4))
def test_theorems_2_2_and_2_3_hold_by_construction_for_random_theta(seed):
    tree, ref, r, beta, g = problem(seed)
    theta = 2 * torch.randn(tree.n_nodes, tree.vocab, generator=g, dtype=F64)
    v_hat = float(torch.randn((), generator=g, dtype=F64))
    q = q_theta_prefixes(tree, theta, ref, v_hat, beta)
    # Theorem 2.2: soft Bellman with pi_ref holds for Q_theta at every internal node
    child, node_q = tree.child_values(q), tree.node_values(q)
    assert torch.allclose(beta * torch.logsumexp(torch.log_softmax(ref, -1) + child / beta, -1), node_q, atol=TOL)
    # ... and its Q-values are consistent across responses sharing a prefix (a function of the prefix)
    for s in range(tree.n_responses):
        for t in range(int(tree.lengths[s])):
            assert abs(node_q[tree.node[s, t]] - q[s, t]) < TOL
    # Theorem 2.3: path consistency with pi_theta on every interval
    log_ratio = tree.token_logp(theta) - tree.token_logp(ref)
    for i in range(tree.max_len + 1):
        for j in range(i, tree.max_len + 1):
            ok = j <= tree.lengths
            assert torch.allclose(beta * log_ratio[:, i:j].sum(-1)[ok], (q[:, j] - q[:, i])[ok], atol=TOL)
    # ... but the terminal condition is not satisfied by a random theta
    assert (q.gather(1, tree.lengths.unsqueeze(-1)).squeeze(-1) - r).abs().max() > 1e-2


@pytest.mark.parametrize("seed", range(3))
def test_theorem_2_1_q_theta_is_q_star_iff_policy_and_value_are_optimal(seed):
    tree, ref, r, beta, g = problem(seed)
    q_star = tree.soft_q(ref, r, beta)
    v_star = float(q_star[0, 0])
    star = tree.optimal_logits(ref, r, beta)
    valid = torch.arange(tree.max_len + 1) <= tree.lengths.unsqueeze(-1)
    assert torch.allclose(q_theta_prefixes(tree, star, ref, v_star, beta)[valid], q_star[valid], atol=TOL)
    # either one wrong -> Q_theta != Q*
    assert (q_theta_prefixes(tree, star, ref, v_star + 0.1, beta) - q_star)[valid].abs().max() > 0.09
    other = star + 0.3 * torch.randn(star.shape, generator=g, dtype=F64)
    assert (q_theta_prefixes(tree, other, ref, v_star, beta) - q_star)[valid].abs().max() > 1e-3


@pytest.mark.parametrize("seed", range(3))
def test_theorem_2_4_terminal_condition_everywhere_identifies_pi_star(seed):
    tree, ref, r, beta, g = problem(seed)
    v_star = tree.soft_q(ref, r, beta)[0, 0]
    ref_tok = tree.token_logp(ref)
    n = tree.n_responses

    def terminal(theta, v):
        return terminal_q(tree.token_logp(theta), ref_tok, tree.mask, torch.full((n,), float(v), dtype=F64), beta)

    star = tree.optimal_logits(ref, r, beta)
    assert torch.allclose(terminal(star, v_star), r, atol=TOL)  # pi* satisfies Eq 13 everywhere
    for _ in range(5):  # nothing else does
        theta = star + torch.randn(star.shape, generator=g, dtype=F64)
        assert (terminal(theta, v_star) - r).abs().max() > 1e-3
    # Eq 13 for all x forces pi_theta(x) = pi_ref(x) exp((r - V_hat)/beta), whose total mass is
    # exp((V* - V_hat)/beta): a policy exists only for V_hat = V*
    for delta in (-0.2, 0.0, 0.3):
        mass = (tree.seq_logp(ref) + (r - (v_star + delta)) / beta).exp().sum()
        assert torch.allclose(mass, torch.exp(torch.tensor(-delta / beta, dtype=F64)), atol=TOL)


def test_binary_reward_q_star_is_log_of_success_probability():
    """docs/math.md §6-7: with binary rewards Q*(prefix) = beta log(p + (1-p) e^{-1/beta}), p = P_ref(success | prefix)."""
    from spo_cli.core.spo import mc_value_target

    tree, ref, r, beta, _ = problem(5, binary=True)
    q = tree.soft_q(ref, r, beta)
    for s in range(tree.n_responses):
        for t in range(int(tree.lengths[s]) + 1):
            # success probability of the prefix by direct enumeration of its continuations
            prefix = tree.tokens[s, :t]
            ext = [
                i for i in range(tree.n_responses)
                if tree.lengths[i] >= t and torch.equal(tree.tokens[i, :t], prefix)
            ]
            p_ref = tree.token_logp(ref)[ext, t:].sum(-1).exp()  # pi_ref(x | prefix)
            p = (p_ref * (r[ext] == 0)).sum() / p_ref.sum()
            assert abs(q[s, t] - mc_value_target(p, beta)) < TOL
