"""Where the SNL block samples: eq. 4 of the paper, shared by all backends.

Sampling point k of query pixel (y, x) starts on a kh x kw grid centred on
the query, laid out as mmcv's deformable convolution lays out its kernel
(row-major, ``(k - 1) // 2`` points before the centre, spaced by
``dilation``), and is shifted by its learned offset (dy, dx), channels
``2k`` and ``2k + 1``.

This module is the one statement of that geometry: every backend's Python
side uses it, and the fused kernels (``csrc/snl_cpu.cpp``,
``backends/triton_kernels.py``), which keep their own arithmetic, name the
function each part mirrors; ``tests/test_sampling_geometry.py`` checks that
they sample where these functions say. Points and grids are always
``(kh, kw)``, ``(y, x)`` order.

Off the map: a corner outside the map contributes nothing (zero padding,
as ``grid_sample``); a position that is not finite is moved to ``OFF_MAP``,
where all four corners are outside.
"""
from typing import Tuple

import torch
from torch import Tensor

# Both bilinear rows (and columns) of -2, i.e. -2 and -1, are outside
# every map.
OFF_MAP = -2.0


def initial_grid(kernel_size: Tuple[int, int],
                 dilation: Tuple[int, int],
                 device=None,
                 dtype=None) -> Tuple[Tensor, Tensor]:
    """(dy, dx) of the K initial sampling points relative to the query."""
    (kh, kw), (dh, dw) = kernel_size, dilation
    dy = (torch.arange(kh, device=device, dtype=dtype) - (kh - 1) // 2) * dh
    dx = (torch.arange(kw, device=device, dtype=dtype) - (kw - 1) // 2) * dw
    return (dy[:, None].expand(kh, kw).reshape(-1),
            dx[None, :].expand(kh, kw).reshape(-1))


def sampling_positions(offset: Tensor, kernel_size: Tuple[int, int],
                       dilation: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
    """Absolute sampling coordinates (t_y, t_x), each ``[B, K, H, W]``.

    Eq. 4: t = p + delta p, with p the initial grid around each query pixel.
    """
    B, two_k, H, W = offset.shape
    off = offset.view(B, two_k // 2, 2, H, W)  # (no -1: empty maps too)
    dy, dx = initial_grid(kernel_size, dilation, offset.device, offset.dtype)
    ys = torch.arange(H, device=offset.device, dtype=offset.dtype)
    xs = torch.arange(W, device=offset.device, dtype=offset.dtype)
    t_y = ys.view(1, 1, H, 1) + dy.view(1, -1, 1, 1) + off[:, :, 0]
    t_x = xs.view(1, 1, 1, W) + dx.view(1, -1, 1, 1) + off[:, :, 1]
    return t_y, t_x


def finite_positions(t_y: Tensor,
                     t_x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Non-finite positions (NaN or inf offsets) made safe to sample, and
    the guard that makes their queries NaN instead.

    Returns ``t_y``, ``t_x`` with every point that is not finite moved
    outside the map (it samples zeros; no NaN reaches an index), and
    ``guard`` ``[B, H, W]``: 0 for a query whose K positions are finite,
    NaN otherwise. Added to the query's logits it makes its output NaN, and
    its backward carries NaN to all of that query's offsets: a diverging
    offset shows in the loss and gradients, as with torch's own ops.
    """
    guard = ((t_y + t_x) * 0).sum(1)  # 0 * inf and 0 * NaN are NaN
    finite = torch.isfinite(t_y) & torch.isfinite(t_x)
    # a tensor of t's dtype, not a Python float: torch 2.1's ONNX exporter
    # would leave that a double, which the ONNX checker refuses
    off_map = t_y.new_full((), OFF_MAP)
    return (torch.where(finite, t_y,
                        off_map), torch.where(finite, t_x, off_map), guard)


def corners(t_y: Tensor, t_x: Tensor, height: int,
            width: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """The 4 bilinear neighbours of each position (eq. 5).

    Returns ``ys``, ``xs`` (float pixel coordinates), ``weight`` and
    ``inside`` (bool), each ``[..., 4]``, for corners (y0, x0),
    (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1). Weights are
    differentiable in t, so the offset gradient flows through plain
    autograd; they are not yet zeroed outside the map.
    """
    y0, x0 = t_y.detach().floor(), t_x.detach().floor()
    fy, fx = t_y - y0, t_x - x0
    ys = torch.stack([y0, y0, y0 + 1, y0 + 1], -1)
    xs = torch.stack([x0, x0 + 1, x0, x0 + 1], -1)
    weight = torch.stack([(1 - fy) * (1 - fx),
                          (1 - fy) * fx, fy * (1 - fx), fy * fx], -1)
    inside = (ys >= 0) & (ys <= height - 1) & (xs >= 0) & (xs <= width - 1)
    return ys, xs, weight, inside


def bilinear_corners(t_y: Tensor, t_x: Tensor, height: int,
                     width: int) -> Tuple[Tensor, Tensor]:
    """Flat indices and weights of the 4 bilinear neighbours (eq. 5).

    Returns ``index`` (long) and ``weight``, both ``[..., 4]``, in the
    order of :func:`corners`. A corner outside the map gets weight 0 and a
    clamped, valid index.
    """
    ys, xs, weight, inside = corners(t_y, t_x, height, width)
    index = (ys.clamp(0, height - 1) * width + xs.clamp(0, width - 1)).long()
    return index, weight * inside
