"""The sparse non-local (SNL) block, Fig. 1(b) and eqs. 4-7 of SSANet."""
import math
from typing import Optional, Tuple, Union

import torch
from mmcv.cnn import ConvModule
from mmengine.model.weight_init import constant_init, normal_init
from mmseg.registry import MODELS
from torch import Tensor, nn

from ...ops import (as_pair, check_backend, sparse_nonlocal_affinity,
                    sparse_nonlocal_attention)


def _grid_for(num_samples: int) -> Optional[Tuple[int, int]]:
    """The near-square kh x kw grid of odd sides with kh * kw == n, if any."""
    for kh in range(math.isqrt(num_samples), 0, -1):
        kw, rest = divmod(num_samples, kh)
        if rest == 0 and kh % 2 and kw % 2 and kw - kh <= 2:
            return kh, kw
    return None


def kernel_size_for(num_samples: int) -> Tuple[int, int]:
    """Map the paper's number of samples K to the initial sampling grid.

    Square numbers of odd side give a square grid (9 -> 3x3, 49 -> 7x7,
    81 -> 9x9, 121 -> 11x11); 99 gives 9x11. A grid needs odd sides (so it is
    centred on the query pixel) at most 2 apart; other numbers are refused
    with the nearest ones that work.
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) \
            or num_samples <= 0:
        raise ValueError(f'num_samples must be a positive int, got '
                         f'{num_samples!r}')
    grid = _grid_for(num_samples)
    if grid is None:
        below = next(n for n in range(num_samples, 0, -1) if _grid_for(n))
        above = next(
            n for n in range(num_samples, 4 * num_samples) if _grid_for(n))
        raise ValueError(
            f'num_samples={num_samples} does not form a grid centred on the '
            f'query (kh x kw, odd sides at most 2 apart); use '
            f'{below} ({"x".join(map(str, _grid_for(below)))}) or {above} '
            f'({"x".join(map(str, _grid_for(above)))}), or give '
            f'kernel_size=(kh, kw)')
    return grid


@MODELS.register_module()
class SparseNonLocal2d(nn.Module):
    """Sparse non-local block (SSANet, https://arxiv.org/abs/2109.01915).

    Four 1x1 convs on the input give the query theta(X), key phi(X), value
    g(X) and the offsets P (2K channels); each query attends to K keys and
    values sampled around it
    (:func:`mmseg_ssanet.ops.sparse_nonlocal_attention`, eqs. 4-7), and
    ``Z = gamma(Y) + X`` (eq. 7).

    Args:
        in_channels (int): Channels C of the input (and output).
        reduction (int): theta and phi have ``in_channels // reduction``
            channels (the paper: C/2). g keeps C channels, as in the paper.
        num_samples (int): K, the number of sampled keys per query (the
            paper: 81 on Cityscapes, 49 on ADE20K and PASCAL Context).
            Ignored when ``kernel_size`` is given.
        kernel_size (int | tuple[int, int], optional): The initial sampling
            grid (kh, kw) explicitly.
        dilation (int | tuple[int, int]): Spacing of the initial grid.
        use_scale (bool): Scale logits by 1/sqrt(C/reduction). The paper
            uses none. Default: False.
        zeros_init (bool): Start gamma at zero, so the block starts as the
            identity (mmcv's NonLocal2d does). Default False, so that the
            offsets receive a gradient from the first step.
        conv_cfg (dict, optional): Config of the convs.
        norm_cfg (dict, optional): Norm after gamma.
        backend (str, optional): Operator backend: None (default) picks
            the fastest for the input's device (``'cpp'`` on CPU,
            ``'triton'`` on CUDA, ``'csr'`` where those cannot run);
            ``'reference'`` is exportable to ONNX. See
            :func:`mmseg_ssanet.ops.sparse_nonlocal_attention`.
    """

    def __init__(self,
                 in_channels: int,
                 reduction: int = 2,
                 num_samples: int = 81,
                 kernel_size: Union[int, Tuple[int, int], None] = None,
                 dilation: Union[int, Tuple[int, int]] = 1,
                 use_scale: bool = False,
                 zeros_init: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 backend: Optional[str] = None):
        super().__init__()
        if not isinstance(in_channels, int) or in_channels <= 0:
            raise ValueError(f'in_channels must be a positive int, got '
                             f'{in_channels!r}')
        if not isinstance(reduction, int) or not 0 < reduction <= in_channels:
            raise ValueError(f'reduction must be an int in [1, in_channels='
                             f'{in_channels}], got {reduction!r}')
        if kernel_size is None:
            kernel_size = kernel_size_for(num_samples)
        self.kernel_size = as_pair(kernel_size, 'kernel_size')
        self.dilation = as_pair(dilation, 'dilation')
        self.num_samples = self.kernel_size[0] * self.kernel_size[1]
        self.in_channels = in_channels
        self.inter_channels = in_channels // reduction
        self.scale = self.inter_channels**-0.5 if use_scale else None
        self.zeros_init = zeros_init
        self.backend = check_backend(backend)

        def conv1x1(out_channels, norm=None):
            return ConvModule(
                in_channels,
                out_channels,
                1,
                conv_cfg=conv_cfg,
                norm_cfg=norm,
                act_cfg=None)

        self.theta = conv1x1(self.inter_channels)
        self.phi = conv1x1(self.inter_channels)
        self.g = conv1x1(in_channels)
        self.offset = conv1x1(2 * self.num_samples)
        self.gamma = conv1x1(in_channels, norm_cfg)
        self.init_weights()

    def init_weights(self) -> None:
        for m in (self.theta, self.phi, self.g):
            normal_init(m.conv, std=0.01)
        # Zero offsets: training starts from the regular grid (eq. 4, p).
        constant_init(self.offset.conv, 0)
        last = self.gamma.norm if self.gamma.with_norm else self.gamma.conv
        if self.zeros_init:
            constant_init(last, 0)
        else:
            normal_init(self.gamma.conv, std=0.01)

    def sample_offsets(self, x: Tensor) -> Tensor:
        """The learned offsets P, ``[B, 2K, H, W]`` (dy, dx per point)."""
        return self.offset(x)

    @torch.no_grad()
    def sampling_points(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Learned sampling coordinates and their attention weights.

        Returns ``(t_y, t_x, weight)``, each ``[B, K, H, W]``, in feature
        pixels of ``x`` (the block's input); see
        :func:`mmseg_ssanet.ops.sparse_nonlocal_affinity`.
        """
        self._check_input(x)
        return sparse_nonlocal_affinity(
            self.theta(x),
            self.phi(x),
            self.sample_offsets(x),
            self.kernel_size,
            self.dilation,
            scale=self.scale)

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'{type(self).__name__} expects [B, {self.in_channels}, H, W]'
                f' input, got shape {tuple(x.shape)}')

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        # channels_last: the sparse products read pixels as rows, which is
        # then a free view of the 1x1 convs' outputs instead of a copy.
        x = x.contiguous(memory_format=torch.channels_last)
        y = sparse_nonlocal_attention(
            self.theta(x),
            self.phi(x),
            self.g(x),
            self.sample_offsets(x),
            self.kernel_size,
            self.dilation,
            scale=self.scale,
            backend=self.backend)
        return x + self.gamma(y)
