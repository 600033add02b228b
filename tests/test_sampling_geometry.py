"""Every backend samples where ops/sampling.py says (eq. 4-5).

The fused kernels keep their own copy of the geometry (the initial grid,
the bilinear corners, what is off the map); this test reads back where
each backend actually sampled and compares it with eqs. 4-5 written out
in this file (not ops/sampling.py, which csr and reference call):
the initial grid + offset, then the bilinear corners, off-map corners
contributing nothing.

How a position is read back: batch image j keeps only point j on the map
(every other point is pushed far off it, where it samples zeros); queries
and keys are zero, so the softmax is uniform, 1/K; the values are the
pixel's own y, x and 1. Then K times the output is, for that point,
sum_c w_c (y_c, x_c, 1) over its in-map corners.
"""
import pytest
import torch

from mmseg_ssanet.ops import BACKENDS, sparse_nonlocal_attention

KERNEL, DILATION = (3, 5), (2, 1)  # not square: (kh, kw) order shows
H, W = 6, 7


def _problem(seed=0):
    kh, kw = KERNEL
    K = kh * kw
    g = torch.Generator().manual_seed(seed)
    # point j of image j: a fractional offset, some corners off the map
    offset = torch.full((K, K, 2, H, W), 1e4, dtype=torch.float64)
    for j in range(K):
        offset[j, j] = torch.randn(
            2, H, W, generator=g, dtype=torch.float64) * 2.5
    offset = offset.view(K, 2 * K, H, W)
    ys = torch.arange(H, dtype=torch.float64).view(H, 1).expand(H, W)
    xs = torch.arange(W, dtype=torch.float64).view(1, W).expand(H, W)
    value = torch.stack([ys, xs, torch.ones(H, W, dtype=torch.float64)])
    value = value.expand(K, 3, H, W).contiguous()
    zeros = torch.zeros(K, 2, H, W, dtype=torch.float64)
    return zeros, value, offset


def _expected(offset, kernel=KERNEL, dilation=DILATION):
    """Eqs. 4-5 written out here, independently of ops/sampling.py (which
    csr and reference call): the grid point n of a kh x kw kernel sits
    (n // kw - (kh - 1) // 2) * dh rows and (n % kw - (kw - 1) // 2) * dw
    columns from its query; bilinear weights over the 4 corners around
    t = p + offset, corners off the map contributing nothing."""
    (kh, kw), (dh, dw) = kernel, dilation
    K = offset.shape[0]
    n = torch.arange(kh * kw, dtype=torch.float64)
    grid_y = (torch.div(n, kw, rounding_mode='floor') - (kh - 1) // 2) * dh
    grid_x = (n % kw - (kw - 1) // 2) * dw
    off = offset.view(K, K, 2, H, W)
    t_y = torch.arange(H, dtype=torch.float64).view(1, 1, H, 1) + \
        grid_y.view(1, K, 1, 1) + off[:, :, 0]
    t_x = torch.arange(W, dtype=torch.float64).view(1, 1, 1, W) + \
        grid_x.view(1, K, 1, 1) + off[:, :, 1]
    sampled = torch.zeros(K, 3, K, H, W, dtype=torch.float64)
    for dy in (0, 1):
        for dx in (0, 1):
            y, x = t_y.floor() + dy, t_x.floor() + dx
            weight = (1 - (t_y - y).abs()) * (1 - (t_x - x).abs())
            weight = weight * ((y >= 0) & (y < H) & (x >= 0) & (x < W))
            sampled += torch.stack([weight * y, weight * x, weight], 1)
    j = torch.arange(K)
    return sampled[j, :, j]  # image j, its point j: [K, 3, H, W]


@pytest.mark.parametrize('backend', sorted(BACKENDS))
def test_backend_samples_where_the_python_geometry_says(backend):
    reason = BACKENDS[backend].unavailable(torch.device('cpu'))
    if reason:
        pytest.fail(f'{backend} must run in the test suite: {reason}')
    zeros, value, offset = _problem()
    out = sparse_nonlocal_attention(
        zeros,
        zeros,
        value,
        offset,
        kernel_size=KERNEL,
        dilation=DILATION,
        backend=backend)
    K = KERNEL[0] * KERNEL[1]
    expected = _expected(offset)
    # the case is not degenerate: partly-off-map points and interior ones
    coverage = expected[:, 2]
    assert (coverage == 0).any() and ((coverage > 0) & (coverage < 1)).any()
    assert (coverage == 1).float().mean() > 0.3
    torch.testing.assert_close(out * K, expected, rtol=0, atol=1e-9)
    # a backend that read the grid as (kw, kh), or the dilation as
    # (dw, dh), would sample elsewhere
    assert not torch.allclose(out * K, _expected(offset, KERNEL[::-1]))
    assert not torch.allclose(out * K, _expected(offset, KERNEL,
                                                 DILATION[::-1]))
