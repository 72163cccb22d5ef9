"""spo.py: batched functions against plain loops, loss properties, gradient checks, extreme inputs,
and the objective spec parser."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spo_cli.core.spo import (
    OBJECTIVES,
    Objective,
    SourceObjective,
    SPOBatch,
    Term,
    advantage_estimates,
    ce_logprob_loss,
    cumulative_q,
    mc_tensors,
    mc_value_target,
    parse_objective,
    prefix_q,
    reverse_q_targets,
    sigmoid_bce_loss,
    squared_loss,
    terminal_q,
)
from tests.tinymodel_util import one_thread  # noqa: F401 (autouse fixture: one torch thread)

F64 = torch.float64


SPECS = [
    "terminal:sq", "terminal:ce", "terminal:sig", "nonterminal:sq", "nonterminal:ce", "nonterminal:sig",
    "advantage", "advantage:sq", "mc:sq", "mc:ce", "mc:sig",
]


def random_batch(seed: int, b: int = 5, t: int = 7, dtype=F64, grad: bool = True) -> SPOBatch:
    """Padded rows with responses in varied places: left-aligned, right-aligned, gaps, empty, full."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(b, t, generator=g) < 0.7
    mask[0] = False  # empty response
    mask[1] = True  # full row
    if b > 2:
        mask[2] = torch.arange(t) >= t // 2  # left-padded (prompt positions masked)
    logp = (-3 * torch.rand(b, t, generator=g, dtype=dtype)).requires_grad_(grad)
    ref = -3 * torch.rand(b, t, generator=g, dtype=dtype)
    reward = torch.rand(b, generator=g, dtype=dtype)
    reward[: b // 2] = (reward[: b // 2] > 0.5).to(dtype)
    v_hat = -torch.rand(b, generator=g, dtype=dtype)
    lengths = mask.sum(-1).tolist()
    mc = []
    for i, n in enumerate(lengths):
        ks = sorted({0, n, *torch.randint(0, n + 1, (2,), generator=g).tolist()})
        mc.append([[k, float(torch.rand((), generator=g)), 10] for k in ks] if i % 3 else None)
    idx, p, valid = mc_tensors(mc, lengths)
    return SPOBatch(logp, ref, mask, reward, v_hat, idx, p.to(dtype), valid, source=[("online", "offline", "pts")[i % 3] for i in range(b)])


# ------------------------------------------------------------------------------ loops


def loop_prefix_values(batch: SPOBatch, beta: float) -> list[list[float]]:
    """Per row: [V_hat, Q after 1 response token, Q after 2, ...] by a plain loop over tokens."""
    out, logp = [], batch.logp.detach()
    for i in range(logp.shape[0]):
        q = [float(batch.v_hat[i])]
        for t in range(logp.shape[1]):
            if batch.mask[i, t]:
                q.append(q[-1] + beta * (float(logp[i, t]) - float(batch.ref_logp[i, t])))
        out.append(q)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_cumulative_q_and_terminal_q_match_a_loop(seed):
    beta = 0.3
    batch = random_batch(seed)
    q = cumulative_q(batch.logp, batch.ref_logp, batch.mask, batch.v_hat, beta)
    qt = terminal_q(batch.logp, batch.ref_logp, batch.mask, batch.v_hat, beta)
    for i, values in enumerate(loop_prefix_values(batch, beta)):
        assert qt[i].item() == pytest.approx(values[-1], abs=1e-12)
        k = 0
        for t in range(batch.logp.shape[1]):
            k += bool(batch.mask[i, t])
            assert q[i, t].item() == pytest.approx(values[k], abs=1e-12)  # padding carries forward


@pytest.mark.parametrize("seed", range(4))
def test_reverse_targets_prefix_q_and_objectives_match_loops(seed):
    beta, eps = 0.4, 1e-3
    batch = random_batch(seed)
    a = advantage_estimates(batch.logp, batch.ref_logp, batch.mask, beta)
    r = batch.reward - 1.0
    y = reverse_q_targets(a, r)
    prefix = loop_prefix_values(batch, beta)
    losses = {"sq": lambda p, t: (p - t) ** 2, "ce": lambda p, t: loop_ce(p, t, beta, eps), "sig": loop_sig}
    for spec in SPECS:
        obj = parse_objective(spec, beta=beta, eps=eps)
        name, loss = obj.terms[0].objective, losses[obj.terms[0].loss]
        got = obj.per_sequence(batch)
        for i, q in enumerate(prefix):
            n, ri = len(q) - 1, float(r[i])
            adv = [q[k + 1] - q[k] for k in range(n)]
            if name == "terminal":
                want = loss(q[-1], ri)
            elif name == "advantage":
                want = loss(sum(adv), ri - float(batch.v_hat[i]))
            elif name == "nonterminal":
                terms = [loss(q[k], ri - sum(adv[k:])) for k in range(1, n + 1)]
                want = sum(terms) / len(terms) if terms else 0.0
            else:
                entries = [
                    (int(k), float(p)) for k, p, v in zip(batch.mc_index[i], batch.mc_p[i], batch.mc_valid[i]) if v and k > 0
                ]
                terms = [loss(q[k], beta * math.log(p + (1 - p) * math.exp(-1 / beta))) for k, p in entries]
                want = sum(terms) / len(terms) if terms else 0.0
            assert got[i].item() == pytest.approx(want, rel=1e-9, abs=1e-12), (spec, i)
        # reverse-Q targets per token
        for i, q in enumerate(prefix):
            adv = [q[k + 1] - q[k] for k in range(len(q) - 1)]
            k = 0
            for t in range(batch.logp.shape[1]):
                if batch.mask[i, t]:
                    k += 1
                    assert y[i, t].item() == pytest.approx(float(r[i]) - sum(adv[k:]), abs=1e-12)


def loop_ce(pred: float, target: float, beta: float, eps: float) -> float:
    limit = -eps * beta
    q = math.exp(min(target, limit) / beta)
    p_c = math.exp(min(pred, limit) / beta)
    return -(q * min(pred, 0.0) / beta + (1 - q) * math.log(1 - p_c))


def loop_sig(pred: float, target: float) -> float:
    s = 1 / (1 + math.exp(-target))
    return -(s * math.log(1 / (1 + math.exp(-pred))) + (1 - s) * math.log(1 / (1 + math.exp(pred))))


def test_prefix_q_indexes_the_first_k_response_tokens():
    mask = torch.tensor([[False, True, False, True, True, False]])
    q = torch.tensor([[9.0, 1.0, 9.0, 2.0, 3.0, 9.0]])  # only response positions matter
    v = torch.tensor([-0.5])
    got = prefix_q(q, mask, v, torch.tensor([[0, 1, 2, 3]]))
    assert got.tolist() == [[-0.5, 1.0, 2.0, 3.0]]
    with pytest.raises(ValueError, match="outside its response"):
        prefix_q(q, mask, v, torch.tensor([[4]]))


def test_mc_tensors_validates_entries():
    idx, p, valid = mc_tensors([[[0, 0.5, 10], [3, 1.0, 10]], None, []], [3, 2, 0])
    assert idx.tolist() == [[0, 3], [0, 0], [0, 0]] and valid.tolist() == [[True, True], [False, False], [False, False]]
    assert p[0].tolist() == [0.5, 1.0]
    for bad, msg in [
        ([[4, 0.5, 10]], "token_index"),
        ([[-1, 0.5, 10]], "token_index"),
        ([[1, 1.5, 10]], "p_hat"),
        ([[1, 0.5, 0]], "n_rollouts"),
        ([[1, 0.5]], "expected"),
    ]:
        with pytest.raises(ValueError, match=f"trajectory 0, mc entry 0.*{msg}"):
            mc_tensors([bad], [3])


# ------------------------------------------------------------------------------ losses


def test_mc_target_is_the_binary_soft_value():
    beta = 0.25
    p = torch.tensor([0.0, 0.3, 1.0], dtype=F64)
    y = mc_value_target(p, beta)
    assert y.tolist() == pytest.approx([-1.0, beta * math.log(0.3 + 0.7 * math.exp(-4)), 0.0], abs=1e-12)
    # under ce the target probability exp(y/beta) is linear in p_hat: an unbiased target
    q = torch.exp(y / beta)
    assert q.tolist() == pytest.approx((p + (1 - p) * math.exp(-1 / beta)).tolist(), abs=1e-12)


def test_ce_is_the_cross_entropy_of_log_probabilities_and_clips_as_specified():
    beta, eps = 0.5, 1e-2
    pred = torch.tensor([-2.0, -0.3, -0.001, 0.0, 0.4], dtype=F64, requires_grad=True)
    target = torch.tensor([-1.0, -0.2, 0.0, -0.5, 0.7], dtype=F64)
    loss = ce_logprob_loss(pred, target, beta, eps)
    for i in range(5):
        assert loss[i].item() == pytest.approx(loop_ce(pred[i].item(), target[i].item(), beta, eps), rel=1e-12)
    # where neither side is clipped it is exactly -[q log p + (1-q) log(1-p)]
    p, q = math.exp(-2.0 / beta), math.exp(-1.0 / beta)
    assert loss[0].item() == pytest.approx(-(q * math.log(p) + (1 - q) * math.log(1 - p)), rel=1e-12)
    loss.sum().backward()
    g = pred.grad
    limit = -eps * beta
    for i in range(5):
        yq = math.exp(min(target[i].item(), limit) / beta)
        pc = math.exp(min(pred[i].item(), limit) / beta)
        pos = -yq / beta if pred[i].item() <= 0 else 0.0  # min(y_hat, 0): no push above 0
        st = (1 - yq) * pc / (beta * (1 - pc))  # straight-through: gradient at the clipped point
        assert g[i].item() == pytest.approx(pos + st, rel=1e-10), i


def test_ce_leaves_a_success_at_zero_and_pushes_down_above_zero():
    """Choice 2 in spo.py: for r = 0 the loss is flat on [-eps*beta, 0] and rises above 0."""
    beta, eps = 0.5, 1e-3
    pred = torch.tensor([-0.5 * eps * beta, 0.0, 0.2], dtype=F64, requires_grad=True)
    ce_logprob_loss(pred, torch.zeros(3, dtype=F64), beta, eps).sum().backward()
    assert abs(pred.grad[0]) < 1e-9 and abs(pred.grad[1]) < 1e-9 and pred.grad[2] > 0.5 / beta


def test_each_loss_is_minimised_at_its_target():
    beta, eps = 0.5, 1e-4
    grid = torch.linspace(-3, -0.01, 2000, dtype=F64)
    for target in (-2.0, -1.0, -0.3):
        for fn in (squared_loss, sigmoid_bce_loss, lambda p, t: ce_logprob_loss(p, t, beta, eps)):
            values = fn(grid, torch.full_like(grid, target))
            assert abs(grid[values.argmin()].item() - target) < 3e-3


@pytest.mark.parametrize("loss_name", ["sq", "ce", "sig"])
def test_gradcheck_losses(loss_name):
    beta, eps = 0.7, 1e-3
    fn = {"sq": squared_loss, "ce": lambda p, t: ce_logprob_loss(p, t, beta, eps), "sig": sigmoid_bce_loss}[loss_name]
    g = torch.Generator().manual_seed(1)
    pred = (-3 * torch.rand(20, generator=g, dtype=F64) - 0.01).requires_grad_()  # unclipped region for ce
    target = -3 * torch.rand(20, generator=g, dtype=F64)
    assert torch.autograd.gradcheck(lambda p: fn(p, target), (pred,))
    assert torch.autograd.gradgradcheck(lambda p: fn(p, target), (pred,)) if loss_name != "ce" else True


def with_logp(batch: SPOBatch, logp: torch.Tensor) -> SPOBatch:
    return SPOBatch(**{**batch.__dict__, "logp": logp})


@pytest.mark.parametrize("spec", [s for s in SPECS if not s.startswith("nonterminal")])
def test_gradcheck_objectives(spec):
    batch = random_batch(3)
    # y_hat stays below -eps*beta, so the ce clip (straight-through by design) is not crossed
    obj = parse_objective(spec, beta=0.6, eps=1e-6)
    logp = (batch.ref_logp - 0.05).detach().requires_grad_()
    assert torch.autograd.gradcheck(lambda lp: obj.per_sequence(with_logp(batch, lp)), (logp,))


@pytest.mark.parametrize("loss", ["sq", "ce", "sig"])
def test_nonterminal_gradient_is_the_gradient_with_targets_held_fixed(loss):
    """Reverse-Q targets are detached: the gradient is that of the loss with y_t frozen at its value."""
    beta = 0.6
    batch = random_batch(3)
    obj = parse_objective(f"nonterminal:{loss}", beta=beta, eps=1e-6)
    logp0 = (batch.ref_logp - 0.05).detach()
    r = batch.reward - 1.0
    frozen = reverse_q_targets(advantage_estimates(logp0, batch.ref_logp, batch.mask, beta), r)
    fn = {"sq": squared_loss, "ce": lambda p, t: ce_logprob_loss(p, t, beta, 1e-6), "sig": sigmoid_bce_loss}[loss]

    def fixed_target_loss(lp):  # (B,)
        q = cumulative_q(lp, batch.ref_logp, batch.mask, batch.v_hat, beta)
        per_token = torch.where(batch.mask, fn(q, frozen), 0.0)
        return per_token.sum(-1) / batch.mask.sum(-1).clamp(min=1)

    x = logp0.clone().requires_grad_()
    assert torch.autograd.gradcheck(fixed_target_loss, (x,))
    (want,) = torch.autograd.grad(fixed_target_loss(x).sum(), x)
    (got,) = torch.autograd.grad(obj.per_sequence(with_logp(batch, x)).sum(), x)
    assert torch.allclose(got, want, atol=1e-12)
    if loss == "sq":  # docs/math.md §6: every residual equals the terminal one; earlier tokens get more gradient
        term = parse_objective("terminal:sq", beta=beta)
        (g_term,) = torch.autograd.grad(term.per_sequence(with_logp(batch, x)).sum(), x)
        for i in range(batch.mask.shape[0]):
            n = int(batch.mask[i].sum())
            later = torch.arange(n, 0, -1, dtype=F64)  # number of targets at or after each token
            assert torch.allclose(got[i][batch.mask[i]], g_term[i][batch.mask[i]] * later / n, atol=1e-12)


def test_padding_cannot_leak_into_values_or_gradients():
    batch = random_batch(0)
    logp = batch.logp.detach().clone()
    logp[~batch.mask] = -torch.inf  # garbage where there is no response token
    logp.requires_grad_(True)
    for spec in SPECS:
        obj = parse_objective(spec, beta=0.5)
        loss = obj(with_logp(batch, logp))
        (grad,) = torch.autograd.grad(loss, logp)
        assert torch.isfinite(loss) and torch.isfinite(grad).all() and (grad[~batch.mask] == 0).all(), spec


# ------------------------------------------------------------------------------ extreme inputs

logprob = st.one_of(
    st.floats(-1e-7, 0.0),  # near 0
    st.floats(-30.0, 0.0),
    st.floats(-1e4, -1e3),  # very negative
)


@settings(max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    b=st.integers(1, 3),
    t=st.integers(1, 6),
    beta=st.sampled_from([1e-3, 0.05, 1.0, 30.0]),
    eps=st.sampled_from([1e-8, 1e-4, 0.1]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_no_nan_or_inf_on_extreme_inputs(data, b, t, beta, eps, dtype):
    logp = torch.tensor(data.draw(st.lists(logprob, min_size=b * t, max_size=b * t)), dtype=dtype).view(b, t)
    ref = torch.tensor(data.draw(st.lists(logprob, min_size=b * t, max_size=b * t)), dtype=dtype).view(b, t)
    mask_kind = data.draw(st.sampled_from(["empty", "full", "random"]))
    mask = {"empty": torch.zeros(b, t, dtype=torch.bool), "full": torch.ones(b, t, dtype=torch.bool)}.get(mask_kind)
    if mask is None:
        mask = torch.tensor(data.draw(st.lists(st.booleans(), min_size=b * t, max_size=b * t))).view(b, t)
    reward = torch.tensor(data.draw(st.lists(st.sampled_from([0.0, 1.0, 0.5]), min_size=b, max_size=b)), dtype=dtype)
    v_hat = torch.tensor(data.draw(st.lists(st.sampled_from([-1.0, -1e-9, 0.0, -0.5]), min_size=b, max_size=b)), dtype=dtype)
    lengths = mask.sum(-1).tolist()
    mc = [[[n, data.draw(st.sampled_from([0.0, 1.0, 0.37])), 10], [n // 2, 0.0, 5]] for n in lengths]
    idx, p, valid = mc_tensors(mc, lengths)
    leaf = logp.clone().requires_grad_(True)
    batch = SPOBatch(leaf, ref, mask, reward, v_hat, idx, p.to(dtype), valid)
    for spec in SPECS:
        loss = parse_objective(spec, beta=beta, eps=eps)(batch)
        (grad,) = torch.autograd.grad(loss, leaf)
        assert torch.isfinite(loss), (spec, loss)
        assert torch.isfinite(grad).all(), (spec, grad)
    # and the raw losses, with predictions and targets anywhere a Q-value can land
    pred = torch.tensor([-1e6, -30.0, -1e-9, 0.0, 1e-9, 3.0, 1e6], dtype=dtype, requires_grad=True)
    for target in (-1e6, -1.0, 0.0, 5.0):
        tgt = torch.full_like(pred, target)
        for fn in (squared_loss, sigmoid_bce_loss, lambda x, y: ce_logprob_loss(x, y, beta, eps)):
            out = fn(pred, tgt)
            (grad,) = torch.autograd.grad(out.sum(), pred)
            assert torch.isfinite(out).all() and torch.isfinite(grad).all()


def test_low_precision_log_probs_are_summed_in_float32():
    batch = random_batch(2, t=400)
    q16 = cumulative_q(batch.logp.to(torch.bfloat16), batch.ref_logp.to(torch.bfloat16), batch.mask, batch.v_hat, 0.5)
    assert q16.dtype == torch.float32


# ------------------------------------------------------------------------------ parser and tables


def test_parser_builds_weighted_sums_from_the_tables():
    obj = parse_objective("terminal:ce*0.5+mc:ce", beta=0.1)
    assert isinstance(obj, Objective) and obj.terms == (Term("terminal", "ce", 0.5), Term("mc", "ce", 1.0))
    assert str(obj) == "terminal:ce*0.5+mc:ce" and obj.beta == 0.1
    assert parse_objective("advantage", beta=1.0).terms == (Term("advantage", "sig"),)
    assert parse_objective(" 2*nonterminal:sq + advantage:sq*1e-1 ", beta=1.0).terms == (
        Term("nonterminal", "sq", 2.0),
        Term("advantage", "sq", 0.1),
    )
    assert parse_objective("terminal:sq*1e+0", beta=1.0).terms == (Term("terminal", "sq", 1.0),)
    assert set(OBJECTIVES) == {"terminal", "nonterminal", "advantage", "mc"}


@pytest.mark.parametrize(
    "spec, message",
    [
        ("terminal", "needs a loss"),
        ("terminl:ce", "unknown objective"),
        ("advantage:ce", "takes loss sig or sq"),
        ("terminal:xx", "takes loss"),
        ("terminal:ce*-1", "positive"),
        ("terminal:ce*0", "positive"),
        ("terminal:ce*abc", "cannot parse"),
        ("2*terminal:ce*3", "cannot parse"),
        ("terminal:ce+", "cannot parse"),
        ("online=terminal:ce,online=mc:ce", "given twice"),
        ("online=", "cannot parse"),
    ],
)
def test_parser_rejects_bad_specs_with_the_offending_term(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_objective(spec, beta=0.5)


def test_parser_rejects_bad_beta_and_eps():
    with pytest.raises(ValueError, match="beta"):
        parse_objective("terminal:sq", beta=0.0)
    with pytest.raises(ValueError, match="eps"):
        parse_objective("terminal:ce", beta=1.0, eps=0.0)


def test_weighted_sum_is_the_sum_of_its_weighted_terms():
    batch = random_batch(4)
    both = parse_objective("terminal:ce*0.5+mc:sq*2", beta=0.3)
    a = parse_objective("terminal:ce", beta=0.3).per_sequence(batch)
    b = parse_objective("mc:sq", beta=0.3).per_sequence(batch)
    assert torch.allclose(both.per_sequence(batch), 0.5 * a + 2 * b)
    assert torch.allclose(both(batch), (0.5 * a + 2 * b).mean())
    assert set(both.per_term(batch)) == {"terminal:ce*0.5", "mc:sq*2"}
    weighted = SPOBatch(**{**batch.__dict__, "weight": torch.arange(5, dtype=F64)})
    assert torch.allclose(both(weighted), (torch.arange(5) * (0.5 * a + 2 * b)).mean())


def test_objective_by_source_routes_each_row():
    batch = random_batch(6, b=7)  # sources cycle online, offline, pts
    obj = parse_objective("online=terminal:ce, offline=terminal:sq*0.5+nonterminal:sq; *=mc:ce+terminal:sq", beta=0.4)
    assert isinstance(obj, SourceObjective) and str(obj) == (
        "online=terminal:ce,offline=terminal:sq*0.5+nonterminal:sq,*=mc:ce+terminal:sq"
    )
    got = obj.per_sequence(batch)
    for src, spec in [("online", "terminal:ce"), ("offline", "terminal:sq*0.5+nonterminal:sq"), ("pts", "mc:ce+terminal:sq")]:
        want = parse_objective(spec, beta=0.4).per_sequence(batch)
        rows = [i for i, s in enumerate(batch.source) if s == src]
        assert torch.allclose(got[rows], want[rows]), src
    assert torch.allclose(obj(batch), got.mean())
    assert set(obj.per_term(batch)) == {"online/terminal:ce", "offline/terminal:sq*0.5", "offline/nonterminal:sq", "pts/mc:ce", "pts/terminal:sq"}
    (grad,) = torch.autograd.grad(obj(batch), batch.logp)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert parse_objective({"online": "terminal:ce"}, beta=0.4).by_source["online"].terms == (Term("terminal", "ce"),)
    strict = parse_objective("online=terminal:ce", beta=0.4)
    with pytest.raises(ValueError, match="no objective for data source 'offline'"):
        strict(batch)


def test_mc_objective_on_a_batch_without_targets_is_zero_and_differentiable():
    batch = random_batch(0)
    bare = SPOBatch(batch.logp, batch.ref_logp, batch.mask, batch.reward, batch.v_hat)
    loss = parse_objective("mc:ce", beta=0.5)(bare)
    (grad,) = torch.autograd.grad(loss, batch.logp)
    assert loss.item() == 0.0 and (grad == 0).all()
    mixed = parse_objective("terminal:sq+mc:ce", beta=0.5)
    assert torch.allclose(mixed(bare), parse_objective("terminal:sq", beta=0.5)(bare))
