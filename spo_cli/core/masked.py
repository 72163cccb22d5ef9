"""Masked reductions shared by spo.py and ppo.py. A mask is bool or 0/1, True on response tokens.

torch.where (not multiplication) keeps whatever sits in padding positions, even inf, out of
both the values and the gradients.
"""

from __future__ import annotations

import torch
from torch import Tensor


def as_bool(mask: Tensor) -> Tensor:
    return mask if mask.dtype == torch.bool else mask != 0


def row_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of x over the True entries of each row; 0 for a row without any. (B, N) -> (B,)"""
    m = as_bool(mask)
    return torch.where(m, x, 0.0).sum(-1) / m.sum(-1).clamp(min=1).to(x.dtype)


def token_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of x over all True entries of the batch; 0 if there are none. (B, N) -> ()"""
    m = as_bool(mask)
    return torch.where(m, x, 0.0).sum() / m.sum().clamp(min=1).to(x.dtype)
