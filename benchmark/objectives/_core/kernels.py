"""Numeric kernels of the reductions: masked fills, a lean log-sum-exp, counts, anchor means.

They work on (N, M) score matrices and bool masks and avoid full-size temporaries (int64
copies of masks, saved copies for autograd) where torch's one-liners would make them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def fill_outside(x: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """A new tensor: ``x`` where ``mask``, -inf elsewhere (one pass, no copy of the mask).

    With ``dim``, the lines along ``dim`` where the mask is empty are 0 instead, which keeps
    the gradient of a log-sum-exp over them finite. The result is not saved by autograd, so
    callers may transform it in place (-inf stays -inf under shifts and positive scaling).
    """
    if dim is None:
        return torch.where(mask, x, -math.inf)
    return _fill_outside(x, mask, any_along(mask, dim))


def _fill_outside(x: Tensor, mask: Tensor, any_: Tensor) -> Tensor:
    other = torch.zeros(any_.shape, dtype=x.dtype, device=x.device).masked_fill_(any_, -math.inf)
    return torch.where(mask, x, other)


class _LogSumExp(torch.autograd.Function):
    """``torch.logsumexp(x, dim, keepdim=True)`` whose backward makes one temporary of the
    size of ``x`` (in place) instead of three; same formula, grad * exp(x - out)."""

    @staticmethod
    def forward(ctx, x: Tensor, dim: int) -> Tensor:
        out = torch.logsumexp(x, dim, keepdim=True)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        x, out = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: stay differentiable
            return grad * (x - out).exp(), None
        return (x - out).exp_().mul_(grad), None


def logsumexp(x: Tensor, dim: int) -> Tensor:
    """``torch.logsumexp(x, dim)`` with a leaner backward (see :class:`_LogSumExp`)."""
    return _LogSumExp.apply(x, dim).squeeze(dim)


def masked_logsumexp(
    x: Tensor, mask: Tensor, dim: int = -1, *, temperature: float | None = None
) -> Tensor:
    """log sum_{mask} exp(x [/ temperature]) along ``dim``; -inf where the mask is empty, with
    finite gradients."""
    any_ = any_along(mask, dim)
    filled = _fill_outside(x, mask, any_)
    if temperature is not None:
        filled.div_(temperature)
    out = _LogSumExp.apply(filled, dim)
    return out.masked_fill(~any_, -math.inf).squeeze(dim)


def any_along(mask: Tensor, dim: int) -> Tensor:
    """``mask.any(dim, keepdim=True)``, through a byte maximum (many times faster on CPU)."""
    return mask.view(torch.uint8).amax(dim, keepdim=True).bool()


def count(mask: Tensor) -> Tensor:
    """Number of True entries (``mask.sum()`` would first copy the mask to int64)."""
    return torch.count_nonzero(mask)


def count_per_row(mask: Tensor) -> Tensor:
    """(N, M) bool -> (N,) int64 number of True entries per row, in row blocks so that no
    (N, M) int64 copy of the mask is made (as ``mask.sum(1)`` would)."""
    rows = max(1, 2**18 // max(1, mask.shape[1]))
    return torch.cat([block.sum(1) for block in mask.split(rows)])


def mean_over_anchors(values: Tensor, anchors: Tensor, n_anchors: int) -> Tensor:
    """Average of one value per positive pair over each anchor's positives, then over the
    anchors that have any (an anchor without a positive contributes nothing, never NaN).

    ``anchors`` are the pairs' rows: only the positive pairs are touched (``values`` has one
    entry per pair, e.g. ``pairs.at_positives(t)`` with ``anchors = pairs.pos_index[0]``),
    not an (N, M) matrix.
    """
    n_pos = torch.bincount(anchors, minlength=n_anchors)
    per_anchor = values.new_zeros(n_anchors).index_add(0, anchors, values)
    has = n_pos > 0
    return (per_anchor[has] / n_pos[has]).mean()
