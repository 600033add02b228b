"""What the SNL block is measured against, defined once.

torch only, so the GPU report and the thread benchmark run on a bare
machine:

* :class:`ConvFloor`: an SNL block's own 1x1 convolutions with nothing
  between them, what a perfect SNL block would cost;
* :class:`PlainSNLBlock`: the SNL block in plain ``nn.Conv2d`` layers of
  ``SparseNonLocal2d``'s shapes, on any backend of the operator;
* :func:`dense_attention`, :func:`sdpa_attention`: the dense non-local
  block's attention, in plain torch and by
  ``F.scaled_dot_product_attention``; :class:`DenseNonLocal`, the block
  around them (mmcv's ``NonLocal2d`` layers without norm);
* :func:`passes`: the forward and forward+backward passes every benchmark
  times.
"""
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import sparse_nonlocal_attention


def _rows(*xs):  # [B, C, H, W] -> [B, HW, C]
    return [x.flatten(2).transpose(1, 2) for x in xs]


def _map(y, like):  # [B, HW, C] -> [B, C, H, W] of ``like``'s size
    b, _, h, w = like.shape
    return y.transpose(1, 2).reshape(b, -1, h, w)


def dense_attention(q, k, v, scale: Optional[float] = None):
    """softmax(scale q k^T) v over all pixels, the N x N matrix in memory;
    ``scale`` None: 1/sqrt(C)."""
    qr, kr, vr = _rows(q, k, v)
    scale = qr.shape[-1]**-0.5 if scale is None else scale
    attn = torch.softmax(scale * qr @ kr.transpose(1, 2), -1)
    return _map(attn @ vr, v)


def sdpa_attention(q, k, v, scale: Optional[float] = None):
    """The same by ``F.scaled_dot_product_attention`` (flash / memory-
    efficient kernels where the device has them)."""
    qr, kr, vr = _rows(q, k, v)
    return _map(F.scaled_dot_product_attention(qr, kr, vr, scale=scale), v)


class DenseNonLocal(nn.Module):
    """A dense non-local block (embedded Gaussian, scaled), as mmcv's
    ``NonLocal2d`` computes it: theta, phi, g (C -> C/2), attention, a 1x1
    conv back to C, the residual.

    Args:
        channels (int): input and output channels C.
        attention (Callable): :func:`dense_attention` or
            :func:`sdpa_attention`.
    """

    def __init__(self, channels: int, attention: Callable = sdpa_attention):
        super().__init__()
        inter = channels // 2
        self.theta, self.phi, self.g = (
            nn.Conv2d(channels, inter, 1) for _ in range(3))
        self.conv_out = nn.Conv2d(inter, channels, 1)
        self.attention = attention

    def forward(self, x):
        y = self.attention(self.theta(x), self.phi(x), self.g(x))
        return x + self.conv_out(y)


class PlainSNLBlock(nn.Module):
    """The SNL block's arithmetic in plain torch (eq. 7: Z = gamma(Y) + X).

    Offsets are trained-like: the offset conv's weights give offsets of
    about ``offset_std`` pixels on unit-variance input.

    Args:
        channels (int): input and output channels C (theta and phi: C/2).
        kernel_size (Sequence[int]): the sampling grid (kh, kw).
        offset_std (float): standard deviation of the offsets, pixels.
        backend (str, optional): the operator's backend; None: the
            device's default.
    """

    def __init__(self,
                 channels: int,
                 kernel_size: Sequence[int],
                 offset_std: float = 2.0,
                 backend: Optional[str] = None):
        super().__init__()
        self.attention = sparse_nonlocal_attention
        k = kernel_size[0] * kernel_size[1]
        self.kernel_size, self.backend = tuple(kernel_size), backend
        self.theta = nn.Conv2d(channels, channels // 2, 1)
        self.phi = nn.Conv2d(channels, channels // 2, 1)
        self.g = nn.Conv2d(channels, channels, 1)
        self.offset = nn.Conv2d(channels, 2 * k, 1)
        self.gamma = nn.Conv2d(channels, channels, 1)
        nn.init.normal_(self.offset.weight, std=offset_std / channels**0.5)

    def projections(self) -> List[nn.Conv2d]:
        return [self.theta, self.phi, self.g, self.offset]

    def forward(self, x):
        x = x.contiguous(memory_format=torch.channels_last)
        q, k, v, o = (m(x) for m in self.projections())
        y = self.attention(q, k, v, o, self.kernel_size, backend=self.backend)
        return x + self.gamma(y)


class ConvFloor(nn.Module):
    """A block's 1x1 convs with nothing between them.

    Returns every projection, so that a backward reaches all weights.

    Args:
        projections (Sequence[nn.Conv2d]): the theta, phi, g and offset
            convs.
        gamma (nn.Module): the output projection.
        fused (bool): the projections as one GEMM (one conv of their
            stacked weights); False: one by one, as the block runs them.
    """

    def __init__(self,
                 projections: Sequence[nn.Conv2d],
                 gamma: nn.Module,
                 fused: bool = True):
        super().__init__()
        self.projections = nn.ModuleList(projections)
        self.gamma, self.fused = gamma, fused

    def forward(self, x):
        x = x.contiguous(memory_format=torch.channels_last)
        convs = list(self.projections)
        if self.fused:
            out = F.conv2d(x, torch.cat([c.weight for c in convs]),
                           torch.cat([c.bias for c in convs]))
            q, k, g, o = out.split([c.out_channels for c in convs], 1)
        else:
            q, k, g, o = (c(x) for c in convs)
        return x + self.gamma(g), q, k, o


def passes(
    module: nn.Module,
    x,
    names: Sequence[str] = ('forward', 'forward_backward')
) -> Dict[str, Callable[[], None]]:
    """``forward`` (no grad) and ``forward_backward`` of ``module`` on
    ``x``, those of ``names``; a module returning a tuple has all its
    outputs summed."""

    def forward():
        with torch.no_grad():
            module(x)

    def forward_backward():
        xg = x.detach().requires_grad_()
        out = module(xg)
        outs = out if isinstance(out, tuple) else (out, )
        sum(o.sum() for o in outs).backward()
        module.zero_grad(set_to_none=True)

    found = {'forward': forward, 'forward_backward': forward_backward}
    return {name: found[name] for name in names}
