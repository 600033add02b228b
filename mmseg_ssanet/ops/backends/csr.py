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
(:func:`..sampling.corners`) by plain autograd.

Neighbouring sampling points share corners, so one row names a pixel up to
4K times in any order. The matrices hold each (i, j) once, columns sorted
(``_Pattern``): the sparse libraries assume it, and cuSPARSE silently gives
wrong products without it (seen on an H200: errors of the order of the
values themselves). Per-entry quantities go to their cell by ``slot``.
"""
import warnings
from typing import Optional, Tuple

import torch
from torch import Tensor

from ..sampling import corners, finite_positions, sampling_positions
from .base import Backend, RefuseDoubleBackward, TraceSizes
from .layout import pixel_rows

warnings.filterwarnings(
    'ignore', message='Sparse CSR tensor support is in '
    'beta state')


def _csr(crow: Tensor, col: Tensor, values: Tensor, rows: int,
         cols: int) -> Tensor:
    # no invariant check (it costs time on every call): ours hold by
    # construction (_Pattern; tests/test_backend_csr.py checks them)
    return torch.sparse_csr_tensor(
        crow, col, values, size=(rows, cols), check_invariants=False)


class _Pattern:
    """The coalesced CSR pattern of ``index`` ``[R, E]`` (E entries a row):
    ``crow``, ``col`` (sorted, distinct within a row) and ``slot[e]``, the
    cell of entry e in ``col``; ``transpose()`` gives the pattern of the
    transpose and the cell permutation."""

    def __init__(self, index: Tensor, cols: int):
        rows, per_row = index.shape
        sorted_col, order = index.sort(dim=1)
        first = torch.ones_like(sorted_col, dtype=torch.bool)
        first[:, 1:] = sorted_col[:, 1:] != sorted_col[:, :-1]
        cell = first.reshape(-1).cumsum(0) - 1  # cell of each sorted entry
        self.slot = torch.empty_like(cell)
        self.slot.view(rows, per_row).scatter_(1, order,
                                               cell.view(rows, per_row))
        self.col = sorted_col[first]
        self.counts = first.sum(1)
        self.crow = torch.zeros(
            rows + 1, dtype=torch.long, device=index.device)
        self.crow[1:] = self.counts.cumsum(0)
        self.shape = (rows, cols)

    def gather(self, cells: Tensor) -> Tensor:
        """Per-cell values -> per-entry values ``[R * E]``."""
        return cells[self.slot]

    def scatter(self, entries: Tensor) -> Tensor:
        """Per-entry values (flat) -> per-cell sums."""
        return entries.new_zeros(self.col.numel()).index_add_(
            0, self.slot, entries)

    def matrix(self, cells: Tensor) -> Tensor:
        return _csr(self.crow, self.col, cells, *self.shape)

    def transpose(self) -> Tuple[Tensor, Tensor, Tensor]:
        """(crow, col, perm) of the transpose; columns stay sorted because
        the sort by column is stable over rows in order."""
        rows, cols = self.shape
        perm = torch.argsort(self.col, stable=True)
        crow = torch.zeros(cols + 1, dtype=torch.long, device=self.col.device)
        crow[1:] = torch.bincount(self.col, minlength=cols).cumsum(0)
        row_of = torch.arange(
            rows, device=self.col.device).repeat_interleave(self.counts)
        return crow, row_of[perm], perm


def _sddmm(pattern: _Pattern, left: Tensor, right: Tensor) -> Tensor:
    """<left_i, right_j> for every cell (i, j) of ``pattern``: ``[nnz]``."""
    zeros = pattern.matrix(left.new_zeros(pattern.col.numel()))
    return torch.sparse.sampled_addmm(zeros, left, right.t(), beta=0.).values()


class SparseAttentionFunction(torch.autograd.Function):
    """Eqs. 5-7 given bilinear corners; see the module docstring.

    Args (of ``apply``):
        query: ``[R, Cq]``, rows = batch x pixels, contiguous.
        key: ``[R + 1, Cq]`` (the last row the zero sink of off-map
            corners).
        value: ``[R + 1, C]``.
        index: ``[R, K, 4]`` long, flat pixel index (batch offset
            included), R (the sink) for corners off the map.
        weight: ``[R, K, 4]`` bilinear weights, 0 outside the map.
        guard: ``[R]``, 0, or NaN for a query with a non-finite position
            (``finite_positions``), added to its logits as in ``reference``.
        scale: logit scale (1.0 for none).
    Returns:
        ``[R, C]``.
    """

    @staticmethod
    def forward(ctx, query, key, value, index, weight, guard, scale):
        rows, K, _ = weight.shape
        pattern = _Pattern(index.reshape(rows, 4 * K), key.shape[0])
        dots = pattern.gather(_sddmm(pattern, query, key)).view(rows, K, 4)
        logits = scale * (weight * dots).sum(-1) + guard.unsqueeze(-1)
        affinity = logits.softmax(-1)  # [R, K]
        coeff = pattern.scatter((affinity.unsqueeze(-1) * weight).reshape(-1))
        out = pattern.matrix(coeff) @ value
        ctx.save_for_backward(query, key, value, weight, dots, affinity, coeff)
        ctx.pattern = pattern  # index tensors of our own, not inputs
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, grad_out):
        saved = ctx.saved_tensors  # (unpacked once)
        with torch.no_grad():
            grads = SparseAttentionFunction._gradients(ctx, saved, grad_out)
        anchors = [t for t in saved if t.requires_grad]
        if not torch.is_grad_enabled() or not anchors:
            return grads
        # create_graph=True: first derivatives as asked, second ones refused
        present = [g for g in grads if g is not None]
        refused = iter(
            RefuseDoubleBackward.apply('csr', len(anchors), *anchors,
                                       *present))
        return tuple(None if g is None else next(refused) for g in grads)

    @staticmethod
    def _gradients(ctx, saved, grad_out):
        query, key, value, weight, dots, affinity, coeff = saved
        pattern, scale = ctx.pattern, ctx.scale
        rows, K, _ = weight.shape
        cols = key.shape[0]
        grad_out = grad_out.contiguous()
        need_q, need_k, need_v, _, need_w, need_guard, _ = \
            ctx.needs_input_grad

        # d out / d coeff[i, k, c] = <grad_out_i, value_j>
        grad_coeff = pattern.gather(_sddmm(pattern, grad_out,
                                           value)).view(rows, K, 4)
        grad_affinity = (grad_coeff * weight).sum(-1)
        grad_logit = affinity * (
            grad_affinity - (affinity * grad_affinity).sum(-1, keepdim=True))
        grad_dots = scale * grad_logit.unsqueeze(-1) * weight  # [R, K, 4]

        grad_q = grad_k = grad_v = grad_w = grad_guard = None
        if need_q or need_k:
            grad_cells = pattern.scatter(grad_dots.reshape(-1))
        if need_q:
            grad_q = pattern.matrix(grad_cells) @ key
        if need_k or need_v:
            crow_t, col_t, perm = pattern.transpose()
            if need_k:
                grad_k = _csr(crow_t, col_t, grad_cells[perm], cols,
                              rows) @ query
            if need_v:
                grad_v = _csr(crow_t, col_t, coeff[perm], cols,
                              rows) @ grad_out
        if need_w:
            grad_w = (
                grad_coeff * affinity.unsqueeze(-1) +
                scale * grad_logit.unsqueeze(-1) * dots)
        if need_guard:
            grad_guard = grad_logit.sum(-1)
        return grad_q, grad_k, grad_v, None, grad_w, grad_guard, None


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
    ys, xs, weight, inside = corners(t_y, t_x, H, W)  # [B, K, H, W, 4]
    # The guard joins the logits (NaN for a query with a non-finite
    # position), not the weights: there its gradient, the sum of all the
    # query's weight gradients, would carry a NaN product of one point
    # (0 * an infinite key) to every offset of that query.
    weight = weight * inside
    # Corners off the map point at one all-zero sink row past the pixels,
    # not at a clamped pixel: a NaN or inf there must not reach them
    # (0 * NaN), and the sink's gradient is dropped with it.
    batch = (torch.arange(B, device=ys.device) * N).view(B, 1, 1, 1, 1)
    sink = B * N
    index = torch.where(inside, (ys * W + xs).long() + batch, sink)
    # [B, K, H, W, 4] -> [B*N, K, 4]: one row of the sparse matrix per query
    K = offset.shape[1] // 2  # (not -1: empty maps too)
    index = index.permute(0, 2, 3, 1, 4).reshape(B * N, K, 4)
    weight = weight.permute(0, 2, 3, 1, 4).reshape(B * N, K, 4)
    key_rows, value_rows = (
        torch.cat([rows, rows.new_zeros(1, rows.shape[1])])
        for rows in (pixel_rows(key), pixel_rows(value)))
    out = _sparse_attention(
        pixel_rows(query), key_rows, value_rows, index, weight,
        guard.reshape(B * N), 1.0 if scale is None else float(scale))
    return out.view(B, H, W, C).permute(0, 3, 1, 2)


def unavailable(device: torch.device):
    """None: plain PyTorch runs wherever torch does."""
    return None


def trace_sizes(shapes) -> TraceSizes:
    """Sizes of a traced ``SparseAttentionFunction.apply``: query rows
    ``[R, Cq]``, key, value rows ``[M, C]``, index ``[R, K, 4]``, ..."""
    (rows, cq), value, index = shapes[0], shapes[2], shapes[3]
    return TraceSizes(rows, index[1], cq, value[1])


BACKEND = Backend(
    name='csr',
    attention=attention,
    unavailable=unavailable,
    trace_names=('prim::PythonOp.SparseAttentionFunction', ),
    trace_sizes=trace_sizes)
