"""Enumerable token trees: every response listed, soft-RL quantities computed exactly.

A problem small enough to solve by enumeration (a few tokens, a few steps) is where the identities
of docs/math.md can be checked to machine precision and where an objective can be shown to converge
to pi*. A tabular policy is a table of logits, one row per internal node (non-terminal prefix):
`logits (N, V)`, and any distribution over the listed responses has exactly one such table (up to
a constant per row), so a tabular policy can represent pi* exactly.

    tree = TokenTree.build(vocab=3, max_len=3)          # 15 responses, token 0 (EOS) ends early
    ref = torch.randn(tree.n_nodes, tree.vocab, dtype=torch.float64)
    q_star = tree.soft_q(ref, r, beta)                   # (S, L+1) Q* of every prefix, by enumeration
    star = tree.optimal_logits(ref, r, beta)             # pi* as a table
    tree.token_logp(star)                                # (S, L) the padded log-prob layout of spo.py

Rewards here are already shifted (r <= 0, docs/math.md §1). Everything is float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class TokenTree:
    """Every response of 1..max_len tokens over `vocab` tokens, where token `eos` ends a response.

    Responses are rows (S of them), padded to L = max_len on the right:
    tokens (S, L) long, mask (S, L) bool, node (S, L) long: the internal node (prefix) at which
    each token is drawn (0 = the empty prefix; 0 off the response), lengths (S,).
    """

    vocab: int
    max_len: int
    eos: int
    tokens: Tensor
    mask: Tensor
    node: Tensor
    lengths: Tensor
    n_nodes: int

    @classmethod
    def build(cls, vocab: int, max_len: int, eos: int = 0) -> TokenTree:
        if vocab < 2 or max_len < 1 or not 0 <= eos < vocab:
            raise ValueError("need vocab >= 2, max_len >= 1 and 0 <= eos < vocab")
        node_of: dict[tuple[int, ...], int] = {(): 0}
        responses: list[tuple[int, ...]] = []
        frontier: list[tuple[int, ...]] = [()]
        while frontier:
            grown = []
            for prefix in frontier:
                for a in range(vocab):
                    seq = prefix + (a,)
                    if a == eos or len(seq) == max_len:
                        responses.append(seq)
                    else:
                        node_of[seq] = len(node_of)
                        grown.append(seq)
            frontier = grown
        s, L = len(responses), max_len
        tokens = torch.full((s, L), eos, dtype=torch.long)
        node = torch.zeros((s, L), dtype=torch.long)
        mask = torch.zeros((s, L), dtype=torch.bool)
        for i, seq in enumerate(responses):
            for t, a in enumerate(seq):
                tokens[i, t], node[i, t], mask[i, t] = a, node_of[seq[:t]], True
        return cls(vocab, max_len, eos, tokens, mask, node, mask.sum(-1), len(node_of))

    @property
    def n_responses(self) -> int:
        return self.tokens.shape[0]

    def token_logp(self, logits: Tensor) -> Tensor:
        """log pi(x_t | x_<t) of every response token under a tabular policy. (N, V) -> (S, L), 0 off the response."""
        logp = torch.log_softmax(logits, -1)[self.node, self.tokens]  # (S, L)
        return torch.where(self.mask, logp, 0.0)

    def seq_logp(self, logits: Tensor) -> Tensor:
        """log pi(x) of every response. (N, V) -> (S,)"""
        return self.token_logp(logits).sum(-1)

    def logits_from_seq_logp(self, seq_logp: Tensor) -> Tensor:
        """The tabular policy (log-conditionals, (N, V)) whose response distribution is exp(seq_logp) (S,).

        pi(a | n) = sum of p(x) over responses through edge (n, a) / sum over responses through n.
        """
        p = torch.softmax(seq_logp, -1)  # (S,) normalised
        edge = torch.zeros(self.n_nodes * self.vocab, dtype=p.dtype)
        flat = (self.node * self.vocab + self.tokens)[self.mask]  # every (node, token) step taken
        weight = p.unsqueeze(-1).expand_as(self.mask)[self.mask]
        edge.index_add_(0, flat, weight)
        edge = edge.view(self.n_nodes, self.vocab)  # (N, V) mass through each edge
        return torch.log(edge) - torch.log(edge.sum(-1, keepdim=True))

    def soft_q(self, ref_logits: Tensor, r: Tensor, beta: float) -> Tensor:
        """Q*(x_{1:t}) = beta log E_{pi_ref(.|x_{1:t})}[exp(r/beta)] of every prefix, by enumeration.

        ref_logits: (N, V), r: (S,) shifted rewards -> (S, L+1): column t is the prefix of the
        first t tokens (column 0: V* = Q* of the empty prefix; column length and after: r).
        Each internal prefix sums over the responses that extend it, not over its children, so
        the soft Bellman equation (Eq 10) is a result here, not an assumption.
        """
        ref_tok = self.token_logp(ref_logits)  # (S, L)
        total = ref_tok.sum(-1, keepdim=True)  # (S, 1) log pi_ref(x)
        before = ref_tok.cumsum(-1) - ref_tok  # (S, L) log pi_ref(x_{1:t}) before token t
        # score[n, s] = log pi_ref(x | n) + r(x)/beta for responses x through node n, -inf otherwise
        score = torch.full((self.n_nodes, self.n_responses), -torch.inf, dtype=ref_tok.dtype)
        rows = torch.arange(self.n_responses).unsqueeze(-1).expand_as(self.node)
        value = total - before + (r / beta).unsqueeze(-1)  # (S, L)
        score[self.node[self.mask], rows[self.mask]] = value[self.mask]
        q_node = beta * torch.logsumexp(score, -1)  # (N,)
        out = r.unsqueeze(-1).expand(-1, self.max_len + 1).clone()  # (S, L+1)
        out[:, :-1] = torch.where(self.mask, q_node[self.node], r.unsqueeze(-1))
        return out

    def optimal_logits(self, ref_logits: Tensor, r: Tensor, beta: float) -> Tensor:
        """pi*(x) = pi_ref(x) exp(r(x)/beta) / Z (Eq 2) as a tabular policy (N, V) of log-conditionals."""
        return self.logits_from_seq_logp(self.seq_logp(ref_logits) + r / beta)

    def child_values(self, prefix_values: Tensor) -> Tensor:
        """Arrange per-prefix values (S, L+1), as from `soft_q` or [V_hat, cumulative_q], by tree edge.

        -> (N, V): entry [n, a] is the value of prefix n followed by token a.
        """
        out = torch.zeros(self.n_nodes, self.vocab, dtype=prefix_values.dtype)
        out[self.node[self.mask], self.tokens[self.mask]] = prefix_values[:, 1:][self.mask]
        return out

    def node_values(self, prefix_values: Tensor) -> Tensor:
        """The value of every internal node from per-prefix values (S, L+1). -> (N,)"""
        out = torch.zeros(self.n_nodes, dtype=prefix_values.dtype)
        out[self.node[self.mask]] = prefix_values[:, :-1][self.mask]
        return out


def kl(logp: Tensor, logq: Tensor) -> Tensor:
    """KL(p || q) between two distributions over the same responses, from log-probabilities (S,)."""
    return (logp.exp() * (logp - logq)).sum()


def soft_objective(seq_logp: Tensor, ref_seq_logp: Tensor, r: Tensor, beta: float) -> Tensor:
    """J(pi) = E_pi[r] - beta KL(pi || pi_ref)   (Eq 1), exactly, from (S,) log-probs and rewards."""
    return (seq_logp.exp() * r).sum() - beta * kl(seq_logp, ref_seq_logp)
