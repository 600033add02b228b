"""The plain reference: the paper's equations 4 to 7, literally.

Keys and values are sampled with ``F.grid_sample`` into ``[B, C, N, K]``
tensors: simple, but O(N K C) memory. Exported to ONNX (``GridSample``,
opset >= 16) the same equations take one sampling point at a time
(:func:`attention_by_point`): K logits per query first, then the
softmax-weighted sum of the sampled values, so no intermediate is larger
than O(N C) (an onnxruntime session would keep the ``[B, C, N, K]``
tensors alive together).
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ..sampling import finite_positions, sampling_positions
from .base import Backend, no_output


def sample_bilinear(feature: Tensor, t_y: Tensor, t_x: Tensor) -> Tensor:
    """G(feature, (t_x, t_y)) of eq. 5: ``[B, C, H, W]`` -> ``[B, C, N, K]``.

    Zeros outside the map. Pixel coordinates are normalised for
    ``align_corners=False``, which is defined for any map size (also 1).
    """
    grid = _grid(t_y, t_x, feature)  # [B, K, H, W, 2]
    return _grid_sample(feature, grid.flatten(2, 3).transpose(1, 2))


def _grid(t_y: Tensor, t_x: Tensor, feature: Tensor) -> Tensor:
    """Pixel coordinates as ``grid_sample``'s trailing (x, y) in [-1, 1]."""
    _, _, H, W = feature.shape
    return torch.stack([(2 * t_x + 1) / W - 1, (2 * t_y + 1) / H - 1], -1)


def _grid_sample(feature: Tensor, grid: Tensor) -> Tensor:
    return F.grid_sample(
        feature,
        grid,
        mode='bilinear',
        padding_mode='zeros',
        align_corners=False)


def attention_weights(query: Tensor, key: Tensor, offset: Tensor,
                      kernel_size: Tuple[int, int], dilation: Tuple[int, int],
                      scale: Optional[float]) -> Tuple[Tensor, Tensor, Tensor]:
    """Sampling coordinates (eq. 4) and the sparse affinity S (eqs. 5, 6).

    Returns t_y, t_x ``[B, K, H, W]`` in feature pixels (non-finite ones
    moved outside the map) and S ``[B, N, K]`` (NaN for their queries).
    """
    t_y, t_x = sampling_positions(offset, kernel_size, dilation)  # eq. 4
    safe_y, safe_x, guard = finite_positions(t_y, t_x)
    keys = sample_bilinear(key, safe_y, safe_x)  # eq. 5, [B, Cq, N, K]
    logits = torch.einsum('bcn,bcnk->bnk', query.flatten(2), keys)
    if scale is not None:
        logits = logits * scale
    logits = logits + guard.flatten(1).unsqueeze(-1)  # NaN: not finite
    return safe_y, safe_x, logits.softmax(dim=-1)  # eq. 6


def attention(query: Tensor, key: Tensor, value: Tensor, offset: Tensor,
              kernel_size: Tuple[int, int], dilation: Tuple[int, int],
              scale: Optional[float]) -> Tensor:
    B, C, H, W = value.shape
    if value.numel() == 0:  # grid_sample refuses empty maps
        return no_output(query, key, value, offset)
    t_y, t_x, affinity = attention_weights(query, key, offset, kernel_size,
                                           dilation, scale)
    values = sample_bilinear(value, t_y, t_x)  # [B, C, N, K]
    out = torch.einsum('bnk,bcnk->bcn', affinity, values)  # eq. 7
    return out.view(B, C, H, W)


def _sample_point(feature: Tensor, t_y: Tensor, t_x: Tensor) -> Tensor:
    """G(feature, t) of eq. 5 for one point per query: t_y, t_x
    ``[B, H, W]`` -> ``[B, C, H, W]`` (zeros outside the map)."""
    return _grid_sample(feature, _grid(t_y, t_x, feature))


def attention_by_point(query: Tensor, key: Tensor, value: Tensor,
                       offset: Tensor, kernel_size: Tuple[int, int],
                       dilation: Tuple[int,
                                       int], scale: Optional[float]) -> Tensor:
    """Eqs. 4-7 one sampling point at a time: the largest intermediate is
    ``[B, C, H, W]``, whatever K. The same values as :func:`attention`
    (the ONNX export's form; a Python loop over K, unrolled by tracing)."""
    t_y, t_x = sampling_positions(offset, kernel_size, dilation)  # eq. 4
    t_y, t_x, guard = finite_positions(t_y, t_x)
    n_points = t_y.shape[1]
    logits = torch.stack(
        [(query * _sample_point(key, t_y[:, k], t_x[:, k])).sum(1)
         for k in range(n_points)], 1)  # eqs. 5, 6: [B, K, H, W]
    if scale is not None:
        logits = logits * scale
    affinity = (logits + guard.unsqueeze(1)).softmax(dim=1)
    out = None
    for k in range(n_points):  # eq. 7, a running weighted sum
        term = affinity[:, k:k + 1] * _sample_point(value, t_y[:, k], t_x[:,
                                                                          k])
        out = term if out is None else out + term
    return out


def _attention(query: Tensor, key: Tensor, value: Tensor, offset: Tensor,
               kernel_size: Tuple[int, int], dilation: Tuple[int, int],
               scale: Optional[float]) -> Tensor:
    form = attention_by_point if torch.onnx.is_in_onnx_export() \
        else attention
    return form(query, key, value, offset, kernel_size, dilation, scale)


def unavailable(device: torch.device):
    """None: plain PyTorch runs wherever torch does."""
    return None


# In a trace: torch's own ops (grid_sample, matmul), counted as such.
BACKEND = Backend(
    name='reference', attention=_attention, unavailable=unavailable)
