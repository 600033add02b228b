"""Every backend samples where ops/sampling.py says (eq. 4-5).

The fused kernels keep their own copy of the geometry (the initial grid,
the bilinear corners, what is off the map); this test reads back where
each backend actually sampled and compares it with the one Python
statement of it: ``initial_grid`` + offset (``sampling_positions``), then
``corners`` with off-map corners contributing nothing.

How a position is read back: batch image j keeps only point j on the map
(every other point is pushed far off it, where it samples zeros); queries
and keys are zero, so the softmax is uniform, 1/K; the values are the
pixel's own y, x and 1. Then K times the output is, for that point,
sum_c w_c (y_c, x_c, 1) over its in-map corners.
"""
import pytest
import torch

from mmseg_ssanet.ops import BACKENDS, sparse_nonlocal_attention
from mmseg_ssanet.ops.sampling import corners, sampling_positions

KERNEL, DILATION = (3, 5), (2, 1)  # not square: (kh, kw) order shows
H, W = 6, 7


def _problem(seed=0):
    kh, kw = KERNEL
    K = kh * kw
    g = torch.Generator().manual_seed(seed)
    # point j of image j: a fractional offset, some corners off the map
    offset = torch.full((K, K, 2, H, W), 1e4, dtype=torch.float64)
    for j in range(K):
        offset[j, j] = torch.randn(2, H, W, generator=g,
                                   dtype=torch.float64) * 2.5
    offset = offset.view(K, 2 * K, H, W)
    ys = torch.arange(H, dtype=torch.float64).view(H, 1).expand(H, W)
    xs = torch.arange(W, dtype=torch.float64).view(1, W).expand(H, W)
    value = torch.stack([ys, xs, torch.ones(H, W, dtype=torch.float64)])
    value = value.expand(K, 3, H, W).contiguous()
    zeros = torch.zeros(K, 2, H, W, dtype=torch.float64)
    return zeros, value, offset


def _expected(offset, kernel=KERNEL):
    K = offset.shape[0]
    t_y, t_x = sampling_positions(offset, kernel, DILATION)  # [K, K, H, W]
    ys, xs, weight, inside = corners(t_y, t_x, H, W)
    w = weight * inside
    sampled = torch.stack([(w * ys).sum(-1), (w * xs).sum(-1), w.sum(-1)],
                          1)  # [K images, 3, K points, H, W]
    j = torch.arange(K)
    return sampled[j, :, j]  # image j, its point j: [K, 3, H, W]


@pytest.mark.parametrize('backend', sorted(BACKENDS))
def test_backend_samples_where_the_python_geometry_says(backend):
    reason = BACKENDS[backend].unavailable(torch.device('cpu'))
    if reason:
        pytest.fail(f'{backend} must run in the test suite: {reason}')
    zeros, value, offset = _problem()
    out = sparse_nonlocal_attention(zeros, zeros, value, offset,
                                    kernel_size=KERNEL, dilation=DILATION,
                                    backend=backend)
    K = KERNEL[0] * KERNEL[1]
    expected = _expected(offset)
    # the case is not degenerate: partly-off-map points and interior ones
    coverage = expected[:, 2]
    assert (coverage == 0).any() and ((coverage > 0) & (coverage < 1)).any()
    assert (coverage == 1).float().mean() > 0.3
    torch.testing.assert_close(out * K, expected, rtol=0, atol=1e-9)
    # a backend that read the grid as (kw, kh) would sample elsewhere
    assert not torch.allclose(out * K, _expected(offset, KERNEL[::-1]))
