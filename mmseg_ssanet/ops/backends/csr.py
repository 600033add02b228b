"""The pure-PyTorch fallback: the sparse affinity as a real sparse (CSR)
matrix, where neither fused kernel runs.

Bilinear sampling is linear, so a sampled key is a weighted sum of the 4
pixels around its sampling point. For query i with sampling points k and
corners c (flat pixel index j = idx[i, k, c], bilinear weight w[i, k, c]):

    logit[i, k] = scale * sum_c w[i, k, c] * <q_i, key_j>         (eq. 5, 6)
    out_i       = sum_{k, c} S[i, k] * w[i, k, c] * value_j         (eq. 7)

The dot products <q_i, key_j> for the N x 4K (i, j) pairs are one sampled
dense-dense product (SDDMM, ``torch.sparse.sampled_addmm``) and the
aggregation is one sparse @ dense product with the N x N matrix whose row i
holds S[i, k] * w[i, k, c] at column j. Neither materialises the B x C x N x K
sampled tensors that make the reference slow and memory-hungry. Batches are
stacked block-diagonally, so one 2-D matrix serves the whole batch.

The autograd Function below differentiates query, key, value and the
bilinear weights; the offset gradient then flows through the weights
(:func:`..sampling.bilinear_corners`) by plain autograd. Autograd through the
CSR constructor itself is not used: it does not support the duplicate
column indices that neighbouring sampling points produce.
"""
import warnings
from typing import Optional, Tuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .base import Backend, TraceSizes
from .layout import pixel_rows
from ..sampling import (bilinear_corners, finite_positions,
                        sampling_positions)

# Invariant checks cost time on every construction; our indices are valid by
# construction (clamped in bilinear_corners). Say so once, explicitly.
warnings.filterwarnings('ignore', message='Sparse CSR tensor support is in '
                        'beta state')


def _csr(crow: Tensor, col: Tensor, values: Tensor, rows: int,
         cols: int) -> Tensor:
    return torch.sparse_csr_tensor(crow, col, values, size=(rows, cols),
                                   check_invariants=False)


def _row_pointers(rows: int, per_row: int, device) -> Tensor:
    return torch.arange(0, rows * per_row + 1, per_row, device=device)


def _transpose_pattern(col: Tensor, rows: int, cols: int, per_row: int
                       ) -> Tuple[Tensor, Tensor, Tensor]:
    """CSR pattern of the transpose: (crow, col, permutation of values)."""
    perm = torch.argsort(col, stable=True)
    crow = torch.zeros(cols + 1, dtype=torch.long, device=col.device)
    crow[1:] = torch.bincount(col, minlength=cols).cumsum(0)
    row_of = torch.arange(rows, device=col.device).repeat_interleave(per_row)
    return crow, row_of[perm], perm


def _sddmm(crow: Tensor, col: Tensor, left: Tensor, right: Tensor) -> Tensor:
    """<left_i, right_j> for every stored (i, j): a flat ``[nnz]`` tensor."""
    pattern = _csr(crow, col, left.new_zeros(col.numel()), left.shape[0],
                   right.shape[0])
    return torch.sparse.sampled_addmm(pattern, left, right.t(),
                                      beta=0.).values()


class SparseAttentionFunction(torch.autograd.Function):
    """Eqs. 5-7 given bilinear corners; see the module docstring.

    Args (of ``apply``):
        query: ``[R, Cq]``, rows = batch x pixels, contiguous.
        key: ``[M, Cq]``, M >= R rows (zero rows past R, see ``attention``).
        value: ``[M, C]``.
        index: ``[R, K, 4]`` long, flat pixel index (batch offset included).
        weight: ``[R, K, 4]`` bilinear weights, 0 outside the map.
        scale: logit scale (1.0 for none).
    Returns:
        ``[R, C]``.
    """

    @staticmethod
    def forward(ctx, query, key, value, index, weight, scale):
        rows, K, _ = weight.shape
        crow = _row_pointers(rows, 4 * K, query.device)
        col = index.reshape(-1)
        dots = _sddmm(crow, col, query, key).view(rows, K, 4)
        affinity = (scale * (weight * dots).sum(-1)).softmax(-1)  # [R, K]
        coeff = (affinity.unsqueeze(-1) * weight).reshape(-1)
        out = _csr(crow, col, coeff, rows, value.shape[0]) @ value
        ctx.save_for_backward(query, key, value, col, weight, dots, affinity,
                              coeff)
        ctx.scale = scale
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        query, key, value, col, weight, dots, affinity, coeff = \
            ctx.saved_tensors
        scale = ctx.scale
        rows, K, _ = weight.shape
        cols = key.shape[0]
        per_row = 4 * K
        grad_out = grad_out.contiguous()
        crow = _row_pointers(rows, per_row, query.device)
        need_q, need_k, need_v, _, need_w, _ = ctx.needs_input_grad

        # d out / d coeff[i, k, c] = <grad_out_i, value_j>
        grad_coeff = _sddmm(crow, col, grad_out, value).view(rows, K, 4)
        grad_affinity = (grad_coeff * weight).sum(-1)
        grad_logit = affinity * (
            grad_affinity - (affinity * grad_affinity).sum(-1, keepdim=True))
        grad_dots = scale * grad_logit.unsqueeze(-1) * weight  # [R, K, 4]

        grad_q = grad_k = grad_v = grad_w = None
        if need_q:
            grad_q = _csr(crow, col, grad_dots.reshape(-1), rows,
                          cols) @ key
        if need_k or need_v:
            crow_t, col_t, perm = _transpose_pattern(col, rows, cols,
                                                     per_row)
            if need_k:
                grad_k = _csr(crow_t, col_t, grad_dots.reshape(-1)[perm],
                              cols, rows) @ query
            if need_v:
                grad_v = _csr(crow_t, col_t, coeff[perm], cols,
                              rows) @ grad_out
        if need_w:
            grad_w = (grad_coeff * affinity.unsqueeze(-1)
                      + scale * grad_logit.unsqueeze(-1) * dots)
        return grad_q, grad_k, grad_v, None, grad_w, None


# Dynamo cannot trace sparse CSR construction: under torch.compile the
# sparse products run eagerly (a graph break) and everything around them is
# compiled as usual.
@torch.compiler.disable
def _sparse_attention(*args) -> Tensor:
    return SparseAttentionFunction.apply(*args)


def attention(query: Tensor, key: Tensor, value: Tensor, offset: Tensor,
              kernel_size: Tuple[int, int], dilation: Tuple[int, int],
              scale: Optional[float]) -> Tensor:
    B, C, H, W = value.shape
    N = H * W
    t_y, t_x = sampling_positions(offset, kernel_size, dilation)  # eq. 4
    t_y, t_x, guard = finite_positions(t_y, t_x)
    index, weight = bilinear_corners(t_y, t_x, H, W)  # [B, K, H, W, 4]
    # NaN weights for queries with a non-finite position: NaN logits
    weight = weight + guard.view(B, 1, H, W, 1)
    index = index + (torch.arange(B, device=index.device) * N).view(
        B, 1, 1, 1, 1)  # block-diagonal batch
    # [B, K, H, W, 4] -> [B*N, K, 4]: one row of the sparse matrix per query
    index = index.permute(0, 2, 3, 1, 4).reshape(B * N, -1, 4)
    weight = weight.permute(0, 2, 3, 1, 4).reshape(B * N, -1, 4)
    # torch's SDDMM needs a matrix with at least as many cells as stored
    # entries; duplicates can exceed B*N x B*N on tiny maps, so give it spare
    # all-zero key/value rows that no index points at.
    spare = max(0, 4 * index.shape[1] - B * N)
    key_rows, value_rows = pixel_rows(key), pixel_rows(value)
    if spare:  # (cat: torch 2.1 cannot F.pad rows of Cq = 0 channels)
        key_rows, value_rows = (
            torch.cat([rows, rows.new_zeros(spare, rows.shape[1])])
            for rows in (key_rows, value_rows))
    out = _sparse_attention(
        pixel_rows(query), key_rows, value_rows, index, weight,
        1.0 if scale is None else float(scale))
    return out.view(B, H, W, C).permute(0, 3, 1, 2)


def unavailable(device: torch.device):
    """None: plain PyTorch runs wherever torch does."""
    return None


def trace_sizes(shapes) -> TraceSizes:
    """Sizes of a traced ``SparseAttentionFunction.apply``: query rows
    ``[R, Cq]``, key, value rows ``[M, C]``, index ``[R, K, 4]``, ..."""
    (rows, cq), value, index = shapes[0], shapes[2], shapes[3]
    return TraceSizes(rows, index[1], cq, value[1])


BACKEND = Backend(name='csr', attention=attention, unavailable=unavailable,
                  trace_names=('prim::PythonOp.SparseAttentionFunction', ),
                  trace_sizes=trace_sizes)
