"""The SNL operator's contract: equations, gradients, edge cases, inputs.

Every test runs on every backend, by name, on every device present where
the backend runs (``tests.ops_cases.on_devices``: CPU always, CUDA where
there is one; triton on CUDA tensors on a GPU machine, through its
interpreter elsewhere; test ids ``backend-device``): a backend that cannot
run (the C++ kernel not built) fails them, it is not skipped; where a
backend does not run on a device, the refusal is tested. Each backend's
own internals are tested beside it (test_backend_cpp.py,
test_backend_csr.py, test_backend_triton.py, test_backend_reference.py);
the shared tester is tests/ops_cases.py; where each backend samples,
test_sampling_geometry.py.
"""

import math

import pytest
import torch

from mmseg_ssanet.features import HAS_CUSTOM_OP
from mmseg_ssanet.ops import sparse_nonlocal_attention as snl
from tests.ops_cases import (DEVICES, HALF_TOLERANCE, OFFSET_GRAD_TOLERANCE,
                             fresh_python, on_devices)
from tests.ops_cases import random_inputs as _inputs
from tests.ops_cases import reference_and, runs_on

BACKEND_NAMES = ['cpp', 'triton', 'csr', 'reference']
FAST_BACKENDS = ['cpp', 'triton', 'csr']


def gradcheck(fn, inputs, backend, device):
    # Triton's interpreter runs a kernel in numpy, about 0.1 s a call: full
    # Jacobians would take hours. fast_mode checks the same float64
    # derivatives along random directions (two passes instead of one per
    # input element).
    return torch.autograd.gradcheck(
        fn, inputs, fast_mode=backend == 'triton' and device == 'cpu')


def _naive(q, k, v, o, kh, kw, dilation=1, scale=None):
    """Eqs. 4-7 pixel by pixel, bilinear written out: the ground truth
    (on the CPU, whatever the inputs' device). ``dilation``: int or
    (rows, columns)."""
    q, k, v, o = (x.detach().cpu() for x in (q, k, v, o))
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    B, C, H, W = v.shape
    out = torch.zeros_like(v)

    def bilinear(f, b, y, x):
        y0, x0 = int(torch.floor(y)), int(torch.floor(x))
        acc = torch.zeros(f.shape[1], dtype=f.dtype)
        for yy, xx in ((y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1)):
            if 0 <= yy < H and 0 <= xx < W:
                wgt = (1 - abs(y - yy)) * (1 - abs(x - xx))
                acc = acc + wgt * f[b, :, yy, xx]
        return acc

    for b in range(B):
        for i in range(H):
            for j in range(W):
                keys, vals = [], []
                for n in range(kh * kw):
                    py = i + (n // kw - (kh - 1) // 2) * dh  # eq. 4
                    px = j + (n % kw - (kw - 1) // 2) * dw
                    ty, tx = py + o[b, 2 * n, i, j], px + o[b, 2 * n + 1, i, j]
                    keys.append(bilinear(k, b, ty, tx))  # eq. 5
                    vals.append(bilinear(v, b, ty, tx))
                logits = torch.stack(keys) @ q[b, :, i, j]
                if scale is not None:
                    logits = logits * scale
                s = logits.softmax(0)  # eq. 6
                out[b, :, i, j] = s @ torch.stack(vals)  # eq. 7
    return out


@pytest.mark.parametrize('backend, device', on_devices(BACKEND_NAMES))
@pytest.mark.parametrize(
    'kernel, dilation, scale',
    [
        ((3, 3), 1, None),
        ((3, 5), 2, 0.5),
        ((1, 1), 1, None),
        # non-square kernels, unequal dilation: a (rows, columns) swap anywhere
        # fails these
        ((3, 5), (1, 3), None),
        ((5, 3), (3, 1), 0.5)
    ])
def test_matches_the_equations(backend, device, kernel, dilation, scale):
    K = kernel[0] * kernel[1]
    q, k, v, o = _inputs(B=2, H=4, W=5, K=K, offset_scale=1.5, device=device)
    with torch.no_grad():
        expected = _naive(q, k, v, o, *kernel, dilation, scale)
        got = snl(q, k, v, o, kernel, dilation, scale=scale, backend=backend)
    assert got.device.type == device
    torch.testing.assert_close(got.cpu(), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('backend, device', on_devices(BACKEND_NAMES))
def test_offset_layout_is_mmcv_deform_conv(backend, device):
    # With a zero query every sampling point gets weight 1/K, so the op is a
    # deformable conv whose kernel averages the K sampled values. (mmcv
    # imported here: the rest of the file needs torch alone, and runs so on
    # a bare GPU machine, .dev_scripts/device_check.py; mmcv's op on the CPU.)
    from mmcv.ops import deform_conv2d
    B, C, H, W, kh, kw, d = 2, 3, 7, 8, 3, 5, 2
    _, k, v, o = (
        x.detach().float()
        for x in _inputs(B=B, C=C, H=H, W=W, K=kh * kw, dtype=torch.float32))
    q = torch.zeros_like(k)
    weight = torch.eye(C)[:, :, None, None].expand(C, C, kh, kw) / (kh * kw)
    # positional: stride, padding, dilation (torch 2.1's Function.apply
    # takes no keywords)
    expected = deform_conv2d(v, o, weight.contiguous(), 1,
                             ((kh - 1) // 2 * d, (kw - 1) // 2 * d), d)
    got = snl(
        *(x.to(device) for x in (q, k, v, o)), (kh, kw), d, backend=backend)
    torch.testing.assert_close(got.cpu(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('backend, device', on_devices(BACKEND_NAMES))
@pytest.mark.parametrize(
    'shape', [dict(B=2, H=5, W=6),
              dict(B=1, H=3, W=4),
              dict(B=1, H=1, W=1)])
def test_gradcheck_float64(backend, device, shape):
    # Offsets of scale 3 push many samples outside the map.
    q, k, v, o = _inputs(K=9, offset_scale=3.0, device=device, **shape)
    assert gradcheck(lambda *x: snl(*x, 3, 1, scale=0.7, backend=backend),
                     (q, k, v, o), backend, device)


@pytest.mark.parametrize('backend, device', on_devices(BACKEND_NAMES))
def test_gradcheck_on_grid_lines_and_outside(backend, device):
    # Integer offsets put samples exactly on pixels and grid lines (where
    # bilinear interpolation has a kink, so only q, k, v are checked by
    # finite differences) and, at the border, outside the map.
    q, k, v, o = _inputs(K=9, device=device)
    o = torch.randint(
        -4, 5, o.shape,
        generator=torch.Generator().manual_seed(2)).double().to(device)
    assert gradcheck(lambda q, k, v: snl(q, k, v, o, 3, backend=backend),
                     (q, k, v), backend, device)


@pytest.mark.parametrize('backend, device', on_devices(FAST_BACKENDS))
def test_offset_grad_on_grid_lines_is_the_right_derivative(backend, device):
    # At a kink the gradient is one-sided; like grid_sample, the op takes
    # floor(t), i.e. the derivative from the right. Checked as a directional
    # derivative along a non-negative direction (which stays on that side).
    # The reference reaches pixel coordinates through grid_sample's
    # normalisation, which can round an integer t to t - 1e-16 and so take
    # the left side: only the fast backends are exact here.
    q, k, v, o = (x.detach() for x in _inputs(K=9, device=device))
    o = torch.randint(
        -4, 5, o.shape,
        generator=torch.Generator().manual_seed(2)).double().to(device)
    o[:, ::3] += 0.5  # some on grid lines, not on pixels
    o.requires_grad_()
    out = snl(q, k, v, o, 3, backend=backend)
    (grad, ) = torch.autograd.grad(out.sin().sum(), o)
    direction = torch.rand(
        o.shape,
        generator=torch.Generator().manual_seed(1),
        dtype=torch.float64).to(device)

    def slope(eps):  # one-sided difference quotient, O(eps) off
        with torch.no_grad():
            moved = snl(q, k, v, o + eps * direction, 3, backend=backend)
            return (moved.sin().sum() - out.sin().sum()).item() / eps

    # Richardson: the O(eps) terms cancel, both steps on the right side. (A
    # plain quotient at eps 1e-7 can miss by up to 2e-4 relative: 2 of 300
    # unseeded random offsets did.)
    numeric = 2 * slope(5e-7) - slope(1e-6)
    assert numeric == pytest.approx((grad * direction).sum().item(), rel=1e-5)


@pytest.mark.parametrize('backend, device', on_devices(FAST_BACKENDS))
def test_fast_matches_reference_float32(backend, device):
    # 9x13: tiles of 8x8 with partial ones on both axes; C = 48: a full
    # and a partial 32-channel chunk
    q, k, v, o = _inputs(
        B=2,
        Cq=32,
        C=48,
        H=9,
        W=13,
        K=49,
        dtype=torch.float32,
        offset_scale=4.0,
        device=device)
    outs, grads = [], []
    for backend in ('reference', backend):
        out = snl(q, k, v, o, 7, 2, backend=backend)
        outs.append(out)
        grads.append(torch.autograd.grad((out * out).sum(), (q, k, v, o)))
    # float32 tolerance: sums of ~200 products of unit-scale numbers.
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-4, atol=1e-4)
    for fast, ref in zip(grads[1], grads[0]):
        torch.testing.assert_close(fast, ref, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize('backend, device', on_devices(BACKEND_NAMES))
def test_one_point_kernel_without_offset_is_identity(backend, device):
    _, k, v, _ = _inputs(K=1, device=device)
    o = torch.zeros(2, 2, 6, 7, dtype=torch.float64, device=device)
    torch.testing.assert_close(snl(k, k, v, o, 1, backend=backend), v)


@pytest.mark.parametrize('backend, device', on_devices(BACKEND_NAMES))
def test_autocast_bf16_large_inputs_stay_finite(backend, device):
    q, k, v, o = (
        x.detach().float() for x in _inputs(
            Cq=64, C=16, H=8, W=8, K=9, dtype=torch.float32, device=device))
    q, k, v = q * 100, k * 100, v * 100
    expected = snl(q, k, v, o, 3, backend=backend)
    with torch.autocast(device, dtype=torch.bfloat16):
        # what the 1x1 convs of the block hand over under autocast
        qb, kb, vb = q.bfloat16(), k.bfloat16(), v.bfloat16()
        out = snl(qb, kb, vb, o, 3, backend=backend)
    assert out.dtype == torch.bfloat16
    assert torch.isfinite(out.float()).all()
    # bf16 keeps ~3 significant digits of the inputs; logits of ~1e5
    # magnitude make the softmax nearly one-hot, where rounding flips few.
    close = torch.isclose(out.float(), expected, rtol=0.05, atol=2.0)
    assert close.float().mean() > 0.95


@pytest.mark.parametrize('backend, device', on_devices(BACKEND_NAMES))
def test_torch_compile_matches_eager(backend, device):
    q, k, v, o = (
        x.detach().float().requires_grad_()
        for x in _inputs(H=6, W=7, K=9, dtype=torch.float32, device=device))
    torch._dynamo.reset()
    fn = torch.compile(lambda *x: snl(*x, 3, 1, backend=backend))
    compiled = fn(q, k, v, o)
    eager = snl(q, k, v, o, 3, 1, backend=backend)
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-5)
    g_compiled = torch.autograd.grad(compiled.sum(), (q, k, v, o))
    g_eager = torch.autograd.grad(eager.sum(), (q, k, v, o))
    for a, b in zip(g_compiled, g_eager):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


FUSED_OPS = {'cpp': 'snl_cpu', 'triton': 'snl_triton'}
# Tracing through the fused kernels needs them registered as torch ops; an
# older torch runs them through autograd.Function (test_features.py), and
# torch.compile then breaks the graph there (docs/installation.md).
needs_custom_op = pytest.mark.skipif(
    not HAS_CUSTOM_OP,
    reason='torch.library.custom_op (torch >= 2.4) is '
    'needed to register the kernels as torch ops')


@needs_custom_op
@pytest.mark.parametrize('backend, device', on_devices(FUSED_OPS))
def test_fused_op_compiles_with_no_graph_break(backend, device):
    # Each fused kernel is a registered torch op (mmseg_ssanet::snl_cpu,
    # mmseg_ssanet::snl_triton) with a fake implementation and an autograd
    # formula: dynamo traces the front end, the op and its backward in one
    # graph (fullgraph=True fails on any break), and the result is the
    # eager one.
    q, k, v, o = (
        x.detach().float().requires_grad_()
        for x in _inputs(H=6, W=7, K=9, dtype=torch.float32, device=device))
    torch._dynamo.reset()
    fn = torch.compile(
        lambda *x: snl(*x, 3, 1, scale=0.5, backend=backend), fullgraph=True)
    compiled = fn(q, k, v, o)
    eager = snl(q, k, v, o, 3, 1, scale=0.5, backend=backend)
    torch.testing.assert_close(compiled, eager, rtol=1e-6, atol=1e-6)
    weights = torch.randn_like(eager)
    for a, b in zip(
            torch.autograd.grad((compiled * weights).sum(), (q, k, v, o)),
            torch.autograd.grad((eager * weights).sum(), (q, k, v, o))):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@needs_custom_op
@pytest.mark.parametrize('backend, device', on_devices(FUSED_OPS))
def test_fused_op_passes_opcheck(backend, device):
    # torch.library's own checks: schema, fake implementation against the
    # real one (shapes and strides), autograd registration, AOT dispatch.
    op = getattr(torch.ops.mmseg_ssanet, FUSED_OPS[backend])
    q, k, v, o = (
        x.detach().contiguous(
            memory_format=torch.channels_last).requires_grad_()
        for x in _inputs(H=5, W=6, K=9, device=device))
    torch.library.opcheck(op, (q, k, v, o, [3, 3], [1, 1], 0.7))


@needs_custom_op
@pytest.mark.parametrize('backend, device', on_devices(FUSED_OPS))
def test_fused_op_exports(backend, device):

    class Attention(torch.nn.Module):

        def forward(self, q, k, v, o):
            return snl(q, k, v, o, 3, backend=backend)

    q, k, v, o = (x.detach() for x in _inputs(H=5, W=6, K=9, device=device))
    program = torch.export.export(Attention(), (q, k, v, o))
    assert f'mmseg_ssanet.{FUSED_OPS[backend]}' in str(program.graph)
    torch.testing.assert_close(program.module()(q, k, v, o),
                               Attention()(q, k, v, o))


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
    (dict(query=torch.zeros(2, 4, 6, 7, dtype=torch.float64, device='meta')),
     ValueError,
     'inputs are on different devices: query on meta, value on cpu'),
])
def test_bad_input_is_named(override, error, match):
    with pytest.raises(error, match=match):
        snl(**_bad(**override))


def test_backends_refuse_the_devices_they_do_not_run_on(monkeypatch):
    # Where a backend does not run (cpp on CUDA tensors; triton on CPU
    # tensors without the interpreter), asking for it names why. The
    # table holds on any machine; the refusal end to end on the devices
    # this machine has.
    from mmseg_ssanet.ops.backends import BACKENDS
    assert BACKENDS['cpp'].unavailable(torch.device('cuda'))
    with monkeypatch.context() as env:
        env.delenv('TRITON_INTERPRET', raising=False)
        assert 'TRITON_INTERPRET=1' in BACKENDS['triton'].unavailable(
            torch.device('cpu'))
    refused = [(b, d) for d in DEVICES for b in FAST_BACKENDS
               if not runs_on(b, d)]
    for backend, device in refused:
        q, k, v, o = (x.detach() for x in _inputs(K=9, device=device))
        with pytest.raises(
                RuntimeError, match=f"backend '{backend}' cannot run here"):
            snl(q, k, v, o, 3, backend=backend)
    assert ('cpp', 'cuda') in refused or 'cuda' not in DEVICES


def test_a_device_without_a_kernel_runs_the_reference():
    # Neither fused kernel nor csr is the default off CPU and CUDA: the
    # reference runs (here on 'meta' tensors, which have no autocast
    # either: the front end must not ask for it).
    from mmseg_ssanet.ops import resolve_backend
    assert resolve_backend(None, torch.device('meta')) == 'reference'
    q, k, v, o = (x.detach().to('meta') for x in _inputs(K=9))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = snl(q, k, v, o, 3)
    assert out.device.type == 'meta' and out.shape == v.shape
    assert out.dtype == v.dtype


def test_default_backend_on_cpu_is_the_fused_kernel():
    from mmseg_ssanet.ops import resolve_backend
    assert resolve_backend(None, torch.device('cpu')) == 'cpp'
    assert resolve_backend('csr', torch.device('cpu')) == 'csr'


FALLBACK_SCRIPT = r'''
import sys, warnings
class NoKernel:  # as if the extension was never built
    def find_spec(self, name, path=None, target=None):
        if name == 'mmseg_ssanet.ops._C':
            raise ModuleNotFoundError(f'No module named {name!r}', name=name)
sys.meta_path.insert(0, NoKernel())
import torch
from mmseg_ssanet.ops import sparse_nonlocal_attention as snl
q = torch.randn(1, 4, 5, 6, dtype=torch.float64)
o = torch.randn(1, 18, 5, 6, dtype=torch.float64)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    out = snl(q, q, q, o, 3)
    snl(q, q, q, o, 3)
messages = [str(w.message) for w in caught
            if str(w.message).startswith('SNL operator')]
assert len(messages) == 1, messages  # once, not per call
print('WARNING', messages[0])
torch.testing.assert_close(out, snl(q, q, q, o, 3, backend='reference'))
try:
    snl(q, q, q, o, 3, backend='cpp')
except RuntimeError as err:
    print('FORCED', err)
'''


def test_without_the_kernel_falls_back_once_and_says_how_to_build():
    proc = fresh_python(FALLBACK_SCRIPT)
    assert proc.returncode == 0, proc.stderr
    warning = next(line for line in proc.stdout.splitlines()
                   if line.startswith('WARNING'))
    assert "'csr' backend" in warning
    assert 'pip install --no-build-isolation -e .' in warning
    forced = next(line for line in proc.stdout.splitlines()
                  if line.startswith('FORCED'))
    assert "backend 'cpp' cannot run here" in forced
    assert "No module named 'mmseg_ssanet.ops._C'" in forced


TORCH_ONLY_SCRIPT = r'''
import sys
class NoOpenMMLab:  # as on a machine with torch alone
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('mmcv', 'mmengine', 'mmseg'):
            raise ModuleNotFoundError(f'No module named {name!r}', name=name)
sys.meta_path.insert(0, NoOpenMMLab())
import torch
import mmseg_ssanet
from mmseg_ssanet.ops import sparse_nonlocal_attention as snl
x = torch.randn(2, 4, 5, 6, dtype=torch.float64, requires_grad=True)
o = torch.randn(2, 18, 5, 6, dtype=torch.float64)
out = snl(x, x, x, o, 3)
out.sum().backward()
torch.testing.assert_close(out, snl(x, x, x, o, 3, backend='reference'))
assert x.grad is not None
print('LOADED', sorted(m for m in sys.modules
                       if m.split('.')[0] in ('mmcv', 'mmengine', 'mmseg')))
try:
    import mmseg_ssanet.models
except ImportError as err:
    print('MODELS', err)
'''


def test_operator_works_with_torch_alone():
    proc = fresh_python(TORCH_ONLY_SCRIPT)
    assert proc.returncode == 0, proc.stderr
    assert 'LOADED []' in proc.stdout
    assert 'MODELS mmseg_ssanet.models needs mmsegmentation' in proc.stdout


@pytest.mark.parametrize('backend, device', on_devices(FAST_BACKENDS))
def test_odd_grid_dilated_far_offsets_match_reference(backend, device):
    # The paper's 9x11 grid (K = 99) at dilation 2; some offsets push
    # points far outside the map, some put them on integer grid lines.
    q, k, v, o = _inputs(
        B=2, Cq=5, C=6, H=7, W=9, K=99, offset_scale=3.0, device=device)
    o = o.detach()
    o[0, :40] = 1e4
    o[1, 40:80] = torch.randint(
        -3, 4, o[1, 40:80].shape,
        generator=torch.Generator().manual_seed(2)).double()
    ref, got = reference_and(backend, q, k, v, o, (9, 11), 2, 0.4)
    for a, b in zip(got[:4], ref[:4]):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    # At integer offsets grid_sample may take the other one-sided
    # derivative (see test_offset_grad_on_grid_lines_...): compare the
    # offset gradient elsewhere.
    smooth = o != o.round()
    torch.testing.assert_close(
        got[4][smooth], ref[4][smooth], rtol=1e-9, atol=1e-9)


def _nonfinite_pixels(backend, device, which, bad, grad_out_bad=False):
    """Which pixels of the output and of each gradient hold a NaN or an
    infinity when one pixel of ``which`` (0 query, 1 key, 2 value) holds
    ``bad`` in every channel, or when grad_out does."""
    q, k, v, o = (
        x.detach() for x in _inputs(
            B=2, Cq=4, C=5, H=9, W=11, K=9, offset_scale=1.5, device=device))
    inputs = [q, k, v, o]
    if which is not None:
        inputs[which] = inputs[which].clone()
        inputs[which][1, :, 4, 5] = bad
    inputs = [x.requires_grad_() for x in inputs]
    out = snl(*inputs, 3, backend=backend)
    weight = torch.linspace(
        -1, 1, out.numel(), dtype=out.dtype, device=out.device).view_as(out)
    if grad_out_bad:
        weight[1, :, 4, 5] = bad
    grads = torch.autograd.grad(out, inputs, weight)
    return [~torch.isfinite(x).all(1).cpu() for x in (out, *grads)]


NAMES = ('output', 'grad query', 'grad key', 'grad value', 'grad offset')


@pytest.mark.parametrize('backend, device', on_devices(FAST_BACKENDS))
@pytest.mark.parametrize('bad', [float('nan'), float('inf')])
@pytest.mark.parametrize('which', [0, 1, 2, 'grad_out'])
def test_nonfinite_inputs_reach_the_queries_that_sample_them(
        backend, device, which, bad):
    # A NaN or an infinity at one pixel of query, key, value or grad_out
    # reaches exactly the outputs and gradients the equations give
    # (reference): the queries that have that pixel among their corners,
    # not their neighbours. The C++ kernel's tiles once spread it to all
    # the queries of a tile (0 * NaN in its window products): 83 output
    # pixels instead of 24 for a NaN value pixel, 83 query gradients
    # instead of 24 for a NaN key pixel; its backward's scatter spread a
    # NaN query or grad_out row to the key / value gradients of the whole
    # tile window.
    if which == 'grad_out':
        got = _nonfinite_pixels(backend, device, None, bad, grad_out_bad=True)
        want = _nonfinite_pixels(
            'reference', 'cpu', None, bad, grad_out_bad=True)
    else:
        got = _nonfinite_pixels(backend, device, which, bad)
        want = _nonfinite_pixels('reference', 'cpu', which, bad)
    assert want[0].any() or which == 'grad_out'
    for name, a, b in zip(NAMES, got, want):
        assert torch.equal(a, b), (name, int(a.sum()), int(b.sum()))


def test_affinity_is_what_the_attention_weighs_with():
    # sparse_nonlocal_affinity (the explorer's and the pictures' source)
    # says where each query samples and with which weight; the attention's
    # output must be exactly those weights times the values sampled
    # there (bilinear written out, as in _naive), on the same inputs.
    from mmseg_ssanet.ops import sparse_nonlocal_affinity
    q, k, v, o = (
        x.detach() for x in _inputs(B=2, H=5, W=6, K=15, offset_scale=1.5))
    t_y, t_x, weight = sparse_nonlocal_affinity(
        q, k, o, (3, 5), (2, 1), scale=0.5)
    B, C, H, W = v.shape
    y0, x0 = t_y.floor(), t_x.floor()
    expected = torch.zeros_like(v)
    for dy in (0, 1):
        for dx in (0, 1):
            yy, xx = y0 + dy, x0 + dx
            corner = (1 - (t_y - yy).abs()) * (1 - (t_x - xx).abs())
            inside = (yy >= 0) & (yy < H) & (xx >= 0) & (xx < W)
            flat = (yy.clamp(0, H - 1) * W + xx.clamp(0, W - 1)).long()
            sampled = torch.gather(
                v.flatten(2).unsqueeze(2).expand(-1, -1, flat.shape[1], -1), 3,
                flat.flatten(2).unsqueeze(1).expand(-1, C, -1, -1))
            expected += (weight * corner * inside).flatten(2).unsqueeze(1) \
                .mul(sampled).sum(2).view(B, C, H, W)
    assert torch.allclose(
        weight.sum(1), torch.ones(B, H, W, dtype=weight.dtype))
    from tests.conftest import triton_cannot_run_here
    for backend in BACKEND_NAMES:
        if not runs_on(backend, 'cpu') or (backend == 'triton'
                                           and triton_cannot_run_here()):
            continue  # (its refusal is tested elsewhere)
        got = snl(q, k, v, o, (3, 5), (2, 1), scale=0.5, backend=backend)
        torch.testing.assert_close(
            got, expected, rtol=1e-10, atol=1e-10, msg=backend)


def _grid_sample_has_double_backward():
    """Whether the installed torch differentiates grid_sample's backward
    (torch 2.1 does not), asked of torch itself."""
    x = torch.rand(1, 1, 2, 2, dtype=torch.float64, requires_grad=True)
    grid = torch.rand(1, 1, 1, 2, dtype=torch.float64, requires_grad=True)
    out = torch.nn.functional.grid_sample(x, grid, align_corners=False)
    g, = torch.autograd.grad(out.sum(), grid, create_graph=True)
    try:
        torch.autograd.grad(g.sum(), x)
    except RuntimeError:
        return False
    return True


@pytest.mark.parametrize('backend, device', on_devices(BACKEND_NAMES))
def test_second_derivatives_on_reference_refused_elsewhere(backend, device):
    # Differentiating the gradients (create_graph=True, then grad again):
    # reference is plain autograd and passes gradgradcheck; each fast
    # backend computes its first derivatives as asked and refuses the
    # second (csr once gave None for q, k, v and part of the offset's,
    # silently; cpp and triton a torch error naming no way out).
    q, k, v, o = _inputs(
        B=1, Cq=2, C=3, H=3, W=4, K=9, offset_scale=1.5, device=device)
    if backend == 'reference':
        if not _grid_sample_has_double_backward():
            # torch 2.1: its own error, naming grid_sample's backward
            first = torch.autograd.grad(
                snl(q, k, v, o, 3, backend=backend).square().sum(),
                v,
                create_graph=True)[0]
            with pytest.raises(RuntimeError, match='grid_sampler_2d_backward'):
                torch.autograd.grad(first.square().sum(), o)
            return
        assert torch.autograd.gradgradcheck(
            lambda *x: snl(*x, 3, backend=backend), (q, k, v, o))
        return
    want = torch.autograd.grad(
        snl(q, k, v, o, 3, backend='reference').square().sum(), (q, k, v, o))
    for which, x in enumerate((q, k, v, o)):
        out = snl(q, k, v, o, 3, backend=backend)
        first, = torch.autograd.grad(out.square().sum(), x, create_graph=True)
        torch.testing.assert_close(first, want[which], rtol=1e-9, atol=1e-9)
        with pytest.raises(
                RuntimeError,
                match=f"backend '{backend}' has no "
                "double backward.*backend='reference' has one"):
            torch.autograd.grad(first.square().sum(), x)


@pytest.mark.parametrize('backend, device', on_devices(BACKEND_NAMES))
def test_forward_mode_ad_is_refused(backend, device):
    # No backend has a jvp: cpp and triton once returned outputs without
    # a tangent, silently.
    from torch.autograd.forward_ad import dual_level, make_dual
    q, k, v, o = (x.detach() for x in _inputs(K=9, device=device))
    for which in range(4):
        with dual_level():
            inputs = [q, k, v, o]
            inputs[which] = make_dual(inputs[which],
                                      torch.ones_like(inputs[which]))
            with pytest.raises(
                    NotImplementedError, match='no forward-mode AD'):
                snl(*inputs, 3, backend=backend)


def _equation_corners(offset, H, W):
    """Per query (b, i, j): the in-map pixels among the corners floor(t),
    floor(t) + 1 of its 3x3 points (a corner of weight 0 included: on a
    grid line the equations still name it), written out here."""
    B = offset.shape[0]
    named = {}
    for b in range(B):
        for i in range(H):
            for j in range(W):
                pixels = set()
                for n in range(9):
                    ty = i + n // 3 - 1 + offset[b, 2 * n, i, j].item()
                    tx = j + n % 3 - 1 + offset[b, 2 * n + 1, i, j].item()
                    y0, x0 = math.floor(ty), math.floor(tx)
                    pixels |= {(b, y, x)
                               for y in (y0, y0 + 1)
                               for x in (x0, x0 + 1)
                               if 0 <= y < H and 0 <= x < W}
                named[b, i, j] = pixels
    return named


@pytest.mark.parametrize('backend, device', on_devices(FAST_BACKENDS))
def test_nan_on_grid_lines_reaches_the_corners_the_equations_name(
        backend, device):
    # Integer offsets put points on pixels: one corner of weight 1, the
    # others of weight 0. The rule (docs/operator.md): a NaN key pixel
    # makes NaN the queries that name it among their corners (weight 0
    # too: 0 * NaN), and their key and value gradients at every corner
    # they name; corners off the map name nothing (csr once sent NaN to
    # the clamped border pixel it stored them at). reference differs here
    # only by grid_sample's rounding of integer positions.
    H, W = 9, 11
    q, k, v, o = (x.detach() for x in _inputs(B=2, Cq=4, C=5, H=H, W=W, K=9))
    o = torch.randint(
        -3, 4, o.shape, generator=torch.Generator().manual_seed(1)).double()
    named = _equation_corners(o, H, W)
    for pixel in ((0, 4, 5), (1, 0, 0), (1, 8, 10), (0, 0, 7)):
        k_bad = k.clone()
        k_bad[pixel[0], :, pixel[1], pixel[2]] = float('nan')
        nan_queries = {qp for qp, pixels in named.items() if pixel in pixels}
        want_grads = set().union(*(named[qp] for qp in nan_queries))
        xs = [x.to(device).requires_grad_() for x in (q, k_bad, v, o)]
        out = snl(*xs, 3, backend=backend)
        grads = torch.autograd.grad(out.sum(), xs)

        def nan_pixels(t):
            return {
                tuple(p)
                for p in (~torch.isfinite(t)).any(1).nonzero().tolist()
            }

        assert nan_pixels(out) == nan_queries, pixel
        assert nan_pixels(grads[1]) == want_grads, pixel
        assert nan_pixels(grads[2]) == want_grads, pixel


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('backend, device', on_devices(BACKEND_NAMES))
def test_half_precision_values_and_gradients(backend, device, dtype):
    # half rows in, half out; the gradients of query, key and value in
    # their dtype, the offset's in float32; all against float64. grad_out is
    # exact in the half dtype, so each error is the backend's own. (Triton
    # once took the softmax backward's Delta = <grad_out, out> from the
    # output rounded to bf16: query, key and offset gradients up to 2e-2
    # off, the offset's 4e-3 here.)
    q, k, v, o = (
        x.detach() for x in _inputs(Cq=16, C=8, H=6, W=7, K=9, device=device))
    half = [x.to(dtype).requires_grad_() for x in (q, k, v)]
    half.append(o.float().requires_grad_())
    exact = [x.detach().double().requires_grad_() for x in half]
    weight = torch.randn(
        2,
        8,
        6,
        7,
        dtype=torch.float64,
        generator=torch.Generator().manual_seed(3))
    weight = weight.to(dtype).double().to(device)
    got = snl(*half, 3, backend=backend)
    want = snl(*exact, 3, backend='reference')
    assert got.dtype == dtype
    got = [got, *torch.autograd.grad((got.double() * weight).sum(), half)]
    want = [want, *torch.autograd.grad((want * weight).sum(), exact)]
    assert [g.dtype for g in got[1:]] == [dtype] * 3 + [torch.float32]
    tolerances = [HALF_TOLERANCE[dtype]] * 4 + [OFFSET_GRAD_TOLERANCE]
    for name, a, b, tolerance in zip(NAMES, got, want, tolerances):
        error = (a.double() - b).abs().max() / b.abs().max()
        assert error < tolerance, (name, error.item())


def test_every_backend_declares_the_interface():
    from mmseg_ssanet.ops.backends import BACKENDS, Backend
    assert sorted(BACKENDS) == sorted(BACKEND_NAMES)
    for name, backend in BACKENDS.items():
        assert isinstance(backend, Backend) and backend.name == name
        reason = backend.unavailable(torch.device('cpu'))
        assert reason is None or (isinstance(reason, str) and reason)
        # trace names are what FLOP counting matches: registered ops are
        # namespaced, autograd Functions show as prim::PythonOp
        for trace_name in backend.trace_names:
            assert trace_name.startswith(('mmseg_ssanet::', 'prim::PythonOp.'))
    assert BACKENDS['triton'].half_inputs
    assert not BACKENDS['cpp'].half_inputs
