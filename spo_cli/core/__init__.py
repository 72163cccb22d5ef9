"""The SPO core: pure tensor math for the trainer, named after the paper (docs/math.md).

- spo.py: the cumulative Q-parameterisation (Eq 11-12), losses (squared, cross-entropy on
  log-probabilities, sigmoid + BCE), objectives (terminal, nonterminal, advantage, mc), their
  tables and the spec parser (`parse_objective("terminal:ce*0.5+mc:ce", beta=0.1)`).
- ppo.py: the PPO baseline (KL-regularised reward, GAE, clipped losses, importance weights).
- estimators.py: the soft value of a prompt and pass@k, with standard errors (numpy, float64).
- toy.py: enumerable token trees with exact Q*, V*, pi*, for checking all of the above.

Depends only on torch and numpy; nothing else of spo_cli.
"""

from spo_cli.core.estimators import (
    Estimate,
    pass_at_k,
    pass_at_k_mean,
    soft_value,
    soft_value_binary,
    soft_value_binary_stderr,
    soft_value_stderr,
)
from spo_cli.core.ppo import (
    PolicyLoss,
    gae,
    importance_weights,
    kl_penalized_rewards,
    last_token_mask,
    masked_whiten,
    ppo_policy_loss,
    ppo_value_loss,
)
from spo_cli.core.spo import (
    ALLOWED_LOSSES,
    LOSSES,
    OBJECTIVES,
    Objective,
    SourceObjective,
    SPOBatch,
    Term,
    advantage_estimates,
    advantage_objective,
    ce_logprob_loss,
    cumulative_q,
    mc_objective,
    mc_tensors,
    mc_value_target,
    nonterminal_objective,
    parse_objective,
    prefix_q,
    reverse_q_targets,
    sigmoid_bce_loss,
    squared_loss,
    terminal_objective,
    terminal_q,
)

__all__ = [
    "ALLOWED_LOSSES", "LOSSES", "OBJECTIVES", "Estimate", "Objective", "PolicyLoss", "SPOBatch",
    "SourceObjective", "Term", "advantage_estimates", "advantage_objective", "ce_logprob_loss",
    "cumulative_q", "gae", "importance_weights", "kl_penalized_rewards", "last_token_mask",
    "masked_whiten", "mc_objective", "mc_tensors", "mc_value_target", "nonterminal_objective",
    "parse_objective", "pass_at_k", "pass_at_k_mean", "ppo_policy_loss", "ppo_value_loss",
    "prefix_q", "reverse_q_targets", "sigmoid_bce_loss", "soft_value", "soft_value_binary",
    "soft_value_binary_stderr", "soft_value_stderr", "squared_loss", "terminal_objective", "terminal_q",
]
