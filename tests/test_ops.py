"""The SNL operator: equations, backends against each other, gradients."""
import pytest
import torch
from mmcv.ops import deform_conv2d

from mmseg_ssanet.ops import BACKENDS, sparse_nonlocal_attention as snl

BACKEND_NAMES = sorted(BACKENDS)


def _inputs(B=2, Cq=4, C=5, H=6, W=7, K=15, dtype=torch.float64,
            offset_scale=2.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, Cq, H, W, generator=g, dtype=dtype)
    k = torch.randn(B, Cq, H, W, generator=g, dtype=dtype)
    v = torch.randn(B, C, H, W, generator=g, dtype=dtype)
    o = torch.randn(B, 2 * K, H, W, generator=g, dtype=dtype) * offset_scale
    return [x.requires_grad_() for x in (q, k, v, o)]


def _naive(q, k, v, o, kh, kw, dilation=1, scale=None):
    """Eqs. 4-7 pixel by pixel, bilinear written out: the ground truth."""
    B, C, H, W = v.shape
    out = torch.zeros_like(v)

    def bilinear(f, b, y, x):
        y0, x0 = int(torch.floor(y)), int(torch.floor(x))
        acc = torch.zeros(f.shape[1], dtype=f.dtype)
        for yy, xx in ((y0, x0), (y0, x0 + 1), (y0 + 1, x0),
                       (y0 + 1, x0 + 1)):
            if 0 <= yy < H and 0 <= xx < W:
                wgt = (1 - abs(y - yy)) * (1 - abs(x - xx))
                acc = acc + wgt * f[b, :, yy, xx]
        return acc

    for b in range(B):
        for i in range(H):
            for j in range(W):
                keys, vals = [], []
                for n in range(kh * kw):
                    py = i + (n // kw - (kh - 1) // 2) * dilation  # eq. 4
                    px = j + (n % kw - (kw - 1) // 2) * dilation
                    ty, tx = py + o[b, 2 * n, i, j], px + o[b, 2 * n + 1, i, j]
                    keys.append(bilinear(k, b, ty, tx))  # eq. 5
                    vals.append(bilinear(v, b, ty, tx))
                logits = torch.stack(keys) @ q[b, :, i, j]
                if scale is not None:
                    logits = logits * scale
                s = logits.softmax(0)  # eq. 6
                out[b, :, i, j] = s @ torch.stack(vals)  # eq. 7
    return out


@pytest.mark.parametrize('backend', BACKEND_NAMES)
@pytest.mark.parametrize('kernel, dilation, scale', [
    ((3, 3), 1, None), ((3, 5), 2, 0.5), ((1, 1), 1, None)])
def test_matches_the_equations(backend, kernel, dilation, scale):
    K = kernel[0] * kernel[1]
    q, k, v, o = _inputs(B=2, H=4, W=5, K=K, offset_scale=1.5)
    with torch.no_grad():
        expected = _naive(q, k, v, o, *kernel, dilation, scale)
        got = snl(q, k, v, o, kernel, dilation, scale=scale, backend=backend)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('backend', BACKEND_NAMES)
def test_offset_layout_is_mmcv_deform_conv(backend):
    # With a zero query every sampling point gets weight 1/K, so the op is a
    # deformable conv whose kernel averages the K sampled values.
    B, C, H, W, kh, kw, d = 2, 3, 7, 8, 3, 5, 2
    _, k, v, o = (x.detach().float() for x in
                  _inputs(B=B, C=C, H=H, W=W, K=kh * kw, dtype=torch.float32))
    q = torch.zeros_like(k)
    weight = torch.eye(C)[:, :, None, None].expand(C, C, kh, kw) / (kh * kw)
    expected = deform_conv2d(v, o, weight.contiguous(), stride=1,
                             padding=((kh - 1) // 2 * d, (kw - 1) // 2 * d),
                             dilation=d)
    got = snl(q, k, v, o, (kh, kw), d, backend=backend)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('backend', BACKEND_NAMES)
@pytest.mark.parametrize('shape', [dict(B=2, H=5, W=6), dict(B=1, H=3, W=4),
                                   dict(B=1, H=1, W=1)])
def test_gradcheck_float64(backend, shape):
    # Offsets of scale 3 push many samples outside the map.
    q, k, v, o = _inputs(K=9, offset_scale=3.0, **shape)
    assert torch.autograd.gradcheck(
        lambda *x: snl(*x, 3, 1, scale=0.7, backend=backend), (q, k, v, o))


@pytest.mark.parametrize('backend', BACKEND_NAMES)
def test_gradcheck_on_grid_lines_and_outside(backend):
    # Integer offsets put samples exactly on pixels and grid lines (where
    # bilinear interpolation has a kink, so only q, k, v are checked by
    # finite differences) and, at the border, outside the map.
    q, k, v, o = _inputs(K=9)
    o = torch.randint(-4, 5, o.shape).double()
    assert torch.autograd.gradcheck(
        lambda q, k, v: snl(q, k, v, o, 3, backend=backend), (q, k, v))


def test_offset_grad_on_grid_lines_is_the_right_derivative():
    # At a kink the gradient is one-sided; like grid_sample, the op takes
    # floor(t), i.e. the derivative from the right. Checked as a directional
    # derivative along a non-negative direction (which stays on that side).
    # The reference reaches pixel coordinates through grid_sample's
    # normalisation, which can round an integer t to t - 1e-16 and so take
    # the left side: only the csr backend is exact here.
    backend = 'csr'
    q, k, v, o = (x.detach() for x in _inputs(K=9))
    o = torch.randint(-4, 5, o.shape).double()
    o[:, ::3] += 0.5  # some on grid lines, not on pixels
    o.requires_grad_()
    out = snl(q, k, v, o, 3, backend=backend)
    (grad,) = torch.autograd.grad(out.sin().sum(), o)
    direction = torch.rand(o.shape, generator=torch.Generator().manual_seed(1),
                           dtype=torch.float64)
    eps = 1e-7
    with torch.no_grad():
        moved = snl(q, k, v, o + eps * direction, 3, backend=backend)
        numeric = (moved.sin().sum() - out.sin().sum()) / eps
    assert numeric.item() == pytest.approx((grad * direction).sum().item(),
                                           rel=1e-5)


def test_fast_matches_reference_float32():
    q, k, v, o = _inputs(B=2, Cq=32, C=48, H=13, W=17, K=49,
                         dtype=torch.float32, offset_scale=4.0)
    outs, grads = [], []
    for backend in ('reference', 'csr'):
        out = snl(q, k, v, o, 7, 2, backend=backend)
        outs.append(out)
        grads.append(torch.autograd.grad((out * out).sum(), (q, k, v, o)))
    # float32 tolerance: sums of ~200 products of unit-scale numbers.
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-4, atol=1e-4)
    for fast, ref in zip(grads[1], grads[0]):
        torch.testing.assert_close(fast, ref, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize('backend', BACKEND_NAMES)
def test_one_point_kernel_without_offset_is_identity(backend):
    _, k, v, _ = _inputs(K=1)
    o = torch.zeros(2, 2, 6, 7, dtype=torch.float64)
    torch.testing.assert_close(snl(k, k, v, o, 1, backend=backend), v)


@pytest.mark.parametrize('backend', BACKEND_NAMES)
def test_autocast_bf16_large_inputs_stay_finite(backend):
    q, k, v, o = (x.detach().float() for x in
                  _inputs(Cq=64, C=16, H=8, W=8, K=9, dtype=torch.float32))
    q, k, v = q * 100, k * 100, v * 100
    expected = snl(q, k, v, o, 3, backend=backend)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        # what the 1x1 convs of the block hand over under autocast
        qb, kb, vb = q.bfloat16(), k.bfloat16(), v.bfloat16()
        out = snl(qb, kb, vb, o, 3, backend=backend)
    assert out.dtype == torch.bfloat16
    assert torch.isfinite(out.float()).all()
    # bf16 keeps ~3 significant digits of the inputs; logits of ~1e5
    # magnitude make the softmax nearly one-hot, where rounding flips few.
    close = torch.isclose(out.float(), expected, rtol=0.05, atol=2.0)
    assert close.float().mean() > 0.95


@pytest.mark.parametrize('backend', BACKEND_NAMES)
def test_torch_compile_matches_eager(backend):
    q, k, v, o = (x.detach().float().requires_grad_() for x in
                  _inputs(H=6, W=7, K=9, dtype=torch.float32))
    torch._dynamo.reset()
    fn = torch.compile(lambda *x: snl(*x, 3, 1, backend=backend))
    compiled = fn(q, k, v, o)
    eager = snl(q, k, v, o, 3, 1, backend=backend)
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-5)
    g_compiled = torch.autograd.grad(compiled.sum(), (q, k, v, o))
    g_eager = torch.autograd.grad(eager.sum(), (q, k, v, o))
    for a, b in zip(g_compiled, g_eager):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def _bad(**override):
    q, k, v, o = (x.detach() for x in _inputs(K=9))
    args = dict(query=q, key=k, value=v, offset=o, kernel_size=3)
    args.update(override)
    return args


@pytest.mark.parametrize('override, error, match', [
    (dict(query=torch.zeros(2, 4, 6)), ValueError, 'query must be 4-D'),
    (dict(value=torch.zeros(3, 5, 6, 7, dtype=torch.float64)), ValueError,
     'batch and spatial size'),
    (dict(key=torch.zeros(2, 4, 6, 8, dtype=torch.float64)), ValueError,
     'key has batch and spatial size'),
    (dict(key=torch.zeros(2, 3, 6, 7, dtype=torch.float64)), ValueError,
     'query and key must have the same channels'),
    (dict(offset=torch.zeros(2, 16, 6, 7, dtype=torch.float64)), ValueError,
     r'offset must have 2 \* K = 18 channels'),
    (dict(kernel_size=0), ValueError, 'kernel_size must be positive'),
    (dict(kernel_size=(3, 3, 3)), TypeError, 'kernel_size must be an int'),
    (dict(kernel_size=2.5), TypeError, 'kernel_size must be an int'),
    (dict(dilation=-1), ValueError, 'dilation must be positive'),
    (dict(value=torch.zeros(2, 5, 6, 7, dtype=torch.long)), TypeError,
     'value must be a floating point tensor'),
    (dict(query=[1.0]), TypeError, 'query must be a torch.Tensor'),
    (dict(scale='big'), TypeError, 'scale must be a number'),
    (dict(backend='cuda_magic'), ValueError, 'unknown backend'),
])
def test_bad_input_is_named(override, error, match):
    with pytest.raises(error, match=match):
        snl(**_bad(**override))
