"""Operator problems built from a few numbers, run in a worker process.

The functions here are what :class:`tests.isolated.Isolated` runs: each
builds its inputs from a small description (so a failing case can be
printed and rerun), calls the operator and compares it with the
``reference`` backend in float64. They return descriptions of mismatches,
never tensors, so little crosses the pipe.
"""
import math
import os
import subprocess
import sys

import pytest
import torch

from mmseg_ssanet.ops import sparse_nonlocal_attention as snl

# The devices the operator tests run on: CPU always, CUDA where there is
# one. Triton's interpreter is one setting for the whole process
# (tests/conftest.py chooses it from the machine), so the triton backend
# runs on CUDA tensors where there is a GPU and on CPU tensors elsewhere.
CUDA = torch.cuda.is_available()
DEVICES = ('cpu', 'cuda') if CUDA else ('cpu', )
TRITON_DEVICE = 'cuda' if CUDA else 'cpu'


def runs_on(backend, device):
    """Whether this suite runs ``backend`` on ``device`` tensors here."""
    if backend == 'cpp':
        return device == 'cpu'
    if backend == 'triton':
        return device == TRITON_DEVICE
    return True


def on_devices(backends):
    """``(backend, device)`` parameters, id ``backend-device``, for every
    device present that each backend runs on here."""
    return [
        pytest.param(b, d, id=f'{b}-{d}') for d in DEVICES for b in backends
        if runs_on(b, d)
    ]


LAYOUTS = ('contiguous', 'channels_last', 'sliced', 'strided', 'expanded')
OFFSETS = ('zero', 'small', 'spread', 'huge', 'extreme')
POISONED = ('query', 'key', 'value', 'grad_out')

# max |error| / max |value| against float64, the same for every backend:
# the output and the query, key and value gradients are rounded to the half
# dtype, the offset's gradient is float32 (measured with gpu_report.py in
# docs/operator.md: fp16 <= 4.2e-4, bf16 <= 3.6e-3, offset <= 2.2e-6).
HALF_TOLERANCE = {torch.float16: 1.5e-3, torch.bfloat16: 1e-2}
OFFSET_GRAD_TOLERANCE = 1e-4


def random_inputs(B=2,
                  Cq=4,
                  C=5,
                  H=6,
                  W=7,
                  K=15,
                  dtype=torch.float64,
                  offset_scale=2.0,
                  seed=0,
                  device='cpu'):
    """Query, key, value and offsets (unit normal, offsets times
    ``offset_scale``) on ``device``, each requiring grad (drawn on the CPU:
    the same numbers on every device)."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, Cq, H, W, generator=g, dtype=dtype)
    k = torch.randn(B, Cq, H, W, generator=g, dtype=dtype)
    v = torch.randn(B, C, H, W, generator=g, dtype=dtype)
    o = torch.randn(B, 2 * K, H, W, generator=g, dtype=dtype) * offset_scale
    return [x.to(device).requires_grad_() for x in (q, k, v, o)]


def offsets(mode, B, K, H, W, kernel, dilation, generator, dtype):
    """``[B, 2K, H, W]`` offsets: zero, small (a few pixels, some points
    off the map), spread (each point anywhere on the map), huge (half of
    them 1e3 to 1e9 pixels away, the rest small), or extreme (a third
    1e9 to 1e30 pixels away or +-inf, where the kernels clamp before
    their int32 casts; their queries are NaN by the operator's rule)."""
    shape = (B, K, H, W)

    def rand(*size):
        return torch.rand(*size, generator=generator, dtype=torch.float64)

    if mode == 'zero':
        dy = dx = torch.zeros(shape, dtype=torch.float64)
    elif mode == 'small':
        dy, dx = (
            torch.randn(shape, generator=generator, dtype=torch.float64) * 1.5
            for _ in range(2))
    elif mode == 'spread':
        from mmseg_ssanet.ops.sampling import initial_grid
        gy, gx = initial_grid(kernel, dilation, dtype=torch.float64)
        ys = torch.arange(H, dtype=torch.float64).view(1, 1, H, 1)
        xs = torch.arange(W, dtype=torch.float64).view(1, 1, 1, W)
        # inside the map: every corner a distinct in-map pixel, the case
        # that overflowed the cpp kernel's tile window
        dy = rand(*shape) * (H - 1) - ys - gy.view(1, K, 1, 1)
        dx = rand(*shape) * (W - 1) - xs - gx.view(1, K, 1, 1)
    elif mode == 'huge':
        magnitude = 10**(3 + 6 * rand(2, *shape))
        sign = torch.where(rand(2, *shape) < 0.5, -1.0, 1.0)
        huge = sign * magnitude
        small = torch.randn(
            2, *shape, generator=generator, dtype=torch.float64) * 1.5
        dy, dx = torch.where(rand(2, *shape) < 0.5, huge, small)
    elif mode == 'extreme':
        magnitude = 10**(9 + 21 * rand(2, *shape))
        magnitude = torch.where(rand(2, *shape) < 0.1, math.inf, magnitude)
        sign = torch.where(rand(2, *shape) < 0.5, -1.0, 1.0)
        small = torch.randn(
            2, *shape, generator=generator, dtype=torch.float64) * 1.5
        dy, dx = torch.where(rand(2, *shape) < 0.33, sign * magnitude, small)
    else:
        raise ValueError(f'unknown offset mode {mode!r}')
    return torch.stack([dy, dx], 2).view(B, 2 * K, H, W).to(dtype)


def _laid_out(tensors, layout, B):
    """Leaves holding ``tensors`` in ``layout`` and the views the operator
    gets (gradients are taken with respect to the views)."""
    if layout == 'contiguous':
        leaves = [x.clone().requires_grad_() for x in tensors]
        return leaves, leaves
    if layout == 'channels_last':
        leaves = [
            x.contiguous(memory_format=torch.channels_last).requires_grad_()
            for x in tensors
        ]
        return leaves, leaves
    if layout == 'sliced':  # channel slices of one channels_last tensor
        packed = torch.cat(
            tensors,
            1).contiguous(memory_format=torch.channels_last).requires_grad_()
        return [packed
                ], list(torch.split(packed, [x.shape[1] for x in tensors], 1))
    if layout == 'strided':  # every 2nd row and 3rd column of a larger map
        leaves, views = [], []
        for x in tensors:
            b, c, h, w = x.shape
            big = x.new_zeros(b, c, 2 * h, 3 * w)
            big[:, :, ::2, ::3] = x
            big.requires_grad_()
            leaves.append(big)
            views.append(big[:, :, ::2, ::3])
        return leaves, views
    if layout == 'expanded':  # one image broadcast over the batch: stride 0
        leaves = [x[:1].clone().requires_grad_() for x in tensors]
        return leaves, [x.expand(B, -1, -1, -1) for x in leaves]
    raise ValueError(f'unknown layout {layout!r}')


def problem(case):
    """Inputs of ``case`` (a dict, see ``tests/test_ops_fuzz.py``):
    ``(views, loss weights)``; ``views`` are query, key, value, offset."""
    g = torch.Generator().manual_seed(case['seed'])
    dtype = getattr(torch, case['dtype'])
    B, Cq, C, H, W = (case[n] for n in ('B', 'Cq', 'C', 'H', 'W'))
    kernel, dilation = (case['kh'], case['kw']), (case['dh'], case['dw'])
    K = kernel[0] * kernel[1]
    # logits of unit scale whatever Cq: q and k scaled by Cq ** -1/4
    q, k = (
        torch.randn(B, Cq, H, W, generator=g, dtype=torch.float64) * Cq**-0.25
        for _ in range(2))
    v = torch.randn(B, C, H, W, generator=g, dtype=torch.float64)
    o = offsets(case['offsets'], B, K, H, W, kernel, dilation, g,
                torch.float64)
    weights = torch.randn(B, C, H, W, generator=g, dtype=torch.float64)
    if case.get('poison'):
        _poison(dict(zip(POISONED, (q, k, v, weights))), case)
    if case['layout'] == 'expanded':  # every batch item the first one
        q, k, v, o = (x[:1].expand_as(x) for x in (q, k, v, o))
    tensors = [x.to(dtype) for x in (q, k, v, o)]
    _, views = _laid_out(tensors, case['layout'], B)
    return views, weights


def _poison(tensors, case):
    """Writes case['poison'] = (which, 'nan' | 'inf' | '-inf', count) into
    every channel of ``count`` random pixels of tensors[which] (batch item
    0 of an 'expanded' input: the one its batch repeats)."""
    which, value, count = case['poison']
    g = torch.Generator().manual_seed(case['seed'] + 1)
    x = tensors[which]
    B, _, H, W = x.shape
    for _ in range(count):
        b, y, col = (int(torch.randint(n, (), generator=g)) for n in (B, H, W))
        if case['layout'] == 'expanded' and which != 'grad_out':
            b = 0
        x[b, :, y, col] = float(value)


def _run(views, weights, case, backend):
    out = snl(
        *views, (case['kh'], case['kw']), (case['dh'], case['dw']),
        scale=case['scale'],
        backend=backend)
    loss = (out.double() * weights).sum()
    return [out.detach(), *torch.autograd.grad(loss, views)]


def _kinks(offset, case, tolerance):
    """Where the sampling positions lie on a pixel grid line (within
    ``tolerance``), per offset channel: there the offset gradient is
    one-sided, and grid_sample's normalisation may take the other side."""
    from mmseg_ssanet.ops.sampling import sampling_positions
    t_y, t_x = sampling_positions(offset.double(), (case['kh'], case['kw']),
                                  (case['dh'], case['dw']))
    on = [(t - t.round()).abs() <= tolerance * (1 + t.abs())
          for t in (t_y, t_x)]
    B, K, H, W = t_y.shape
    return torch.stack(on, 2).view(B, 2 * K, H, W)


def compare(case):
    """Mismatches of ``case['backend']`` against the float64 reference:
    value and the four gradients; ``[]`` when they agree."""
    views, weights = problem(case)
    got = _run(views, weights, case, case['backend'])
    exact = [x.detach().double().contiguous().requires_grad_() for x in views]
    expected = _run(exact, weights, case, 'reference')
    float32 = case['dtype'] == 'float32'
    # float32: the fast paths round sums of up to a few thousand products
    rtol, atol = (2e-3, 2e-4) if float32 else (1e-7, 1e-9)
    smooth = ~_kinks(exact[3], case, 1e-5 if float32 else 1e-12)
    problems = []
    for name, a, b in zip(
        ('out', 'grad_query', 'grad_key', 'grad_value', 'grad_offset'), got,
            expected):
        a = a.double()
        if a.shape != b.shape:
            problems.append(f'{name}: shape {tuple(a.shape)}, expected '
                            f'{tuple(b.shape)}')
            continue
        if name == 'grad_offset':
            a, b = a[smooth], b[smooth]
        if case.get('poison'):
            # non-finite exactly where the reference is (NaN and +-inf
            # alike: the sums they meet differ in order), the rest compared
            differ = a.isfinite() != b.isfinite()
            if differ.any():
                problems.append(f'{name}: non-finite at {int(differ.sum())} '
                                f'elements where the reference is not, or '
                                f'the reverse')
        # Compared where both are finite: poisoned rows (their non-finite
        # places checked above) and, with extreme offsets, the key and value
        # gradients, which NaN queries "can also reach" (the docstring,
        # loosely: the pixels they sample).
        if case.get('poison') or (case['offsets'] == 'extreme'
                                  and name in ('grad_key', 'grad_value')):
            both = a.isfinite() & b.isfinite()
            a, b = a[both], b[both]
        finite = b[b.isfinite()]
        scale = max(1.0, finite.abs().max().item()) if finite.numel() \
            else 1.0
        # NaN where the reference has NaN (non-finite offsets), else not
        bad = ~torch.isclose(
            a, b, rtol=rtol, atol=atol * scale, equal_nan=True)
        if bad.any():
            worst = (a - b).abs().max().item()
            problems.append(f'{name}: {int(bad.sum())} of {bad.numel()} '
                            f'differ, max |diff| {worst:.3g} (scale '
                            f'{scale:.3g})')
    return problems


def spread_call(B, Cq, C, H, W, kernel, dtype_name):
    """One spread-offset crash case: spread offsets through the default
    backend, forward and backward; the largest difference from the
    float64 reference over the value and its gradients."""
    case = dict(
        seed=0,
        dtype=dtype_name,
        B=B,
        Cq=Cq,
        C=C,
        H=H,
        W=W,
        kh=kernel[0],
        kw=kernel[1],
        dh=1,
        dw=1,
        offsets='spread',
        layout='contiguous',
        scale=None,
        backend=None)
    views, weights = problem(case)
    got = _run(views, weights, case, None)
    exact = [x.detach().double().requires_grad_() for x in views]
    expected = _run(exact, weights, case, 'reference')
    return max(
        ((a.double() - b).abs().max().item() / max(1.0,
                                                   b.abs().max().item()))
        for a, b in zip(got, expected))


def _empty_views(shape, Cq):
    B, C, H, W = shape
    return [
        torch.randn(B, ch, H, W, dtype=torch.float64, requires_grad=True)
        for ch in (Cq, Cq, C, 18)
    ]


def empty_backend_call(backend, shape):
    """A backend alone (no front end, which answers empty problems before
    any backend runs) on an empty problem: the output's and the gradients'
    shapes, and whether every gradient is zero."""
    from mmseg_ssanet.ops.backends import BACKENDS
    views = _empty_views(shape, 4)
    out = BACKENDS[backend].attention(*views, (3, 3), (1, 1), None)
    grads = torch.autograd.grad(out.sum(), views)
    return (tuple(out.shape), [tuple(g.shape) for g in grads],
            all(bool((g == 0).all()) for g in grads))


def empty_call(backend, shape, Cq):
    """The operator on an empty problem ``[B, C, H, W]`` and its backward:
    the shapes of the output and of the four gradients, and whether every
    gradient is zero."""
    views = _empty_views(shape, Cq)
    out = snl(*views, 3, backend=backend)
    grads = torch.autograd.grad(out.sum(), views)
    return (tuple(out.shape), [tuple(g.shape) for g in grads],
            all(bool((g == 0).all())
                for g in grads), math.isfinite(out.sum().item()))


def reference_and(backend, q, k, v, o, kernel, dilation=1, scale=None):
    """Outputs and gradients of ``backend`` and the reference."""
    results = []
    for name in ('reference', backend):
        xs = [x.detach().requires_grad_() for x in (q, k, v, o)]
        out = snl(*xs, kernel, dilation, scale=scale, backend=name)
        grads = torch.autograd.grad((out * out.detach().cos()).sum(), xs)
        results.append((out, *grads))
    return results


def fresh_python(script):
    """``script`` in a fresh interpreter with the installed kernel (not a
    test build that .dev_scripts/check_kernel.py loads by path)."""
    from mmseg_ssanet.ops.backends import cpp
    env = {k: v for k, v in os.environ.items() if k != cpp.BUILD_ENV}
    return subprocess.run([sys.executable, '-c', script],
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)
