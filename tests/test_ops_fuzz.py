"""Differential fuzzing of every backend against ``reference``, and the
edge cases every backend must treat alike (the operator's docstring).

Each example runs in a worker process (:mod:`tests.isolated`): a memory
error in the C++ kernel fails the example, named, instead of killing the
test session. Examples are drawn by hypothesis (derandomized, so CI is
repeatable) within a work budget per backend: maps from 1x1 to 128x128,
kernels 1x1 to 11x11 (non-square too), dilation 1-3, 1 to 1024 channels,
batches of 1-3, offsets zero / small / spread over the map / huge /
extreme (1e9 to 1e30 pixels, +-inf), NaN or +-inf rows at up to 3 pixels
of query, key, value or grad_out (their non-finite results must be exactly
the reference's), and
contiguous, channels_last, channel-sliced, spatially strided and
batch-expanded (stride 0) inputs, float32 and float64.

``SSANET_FUZZ_EXAMPLES`` sets the number of examples per backend (the
sanitizer job of ``.dev_scripts/check_kernel.py`` runs more). CI replays the
same examples every run; ``SSANET_FUZZ_EXPLORE=DIR`` explores instead (``make
fuzz``: a seed of its own, printed, given to ``--hypothesis-seed``; the
examples kept in DIR, failing ones replayed first next time).
"""
import math
import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

from mmseg_ssanet.ops import sparse_nonlocal_attention as snl
from tests import ops_cases
from tests.isolated import ChildCrashed, Isolated, stderr_then_abort

EXAMPLES = int(os.environ.get('SSANET_FUZZ_EXAMPLES', '50'))
EXPLORE = os.environ.get('SSANET_FUZZ_EXPLORE')
# (sampling points B*N*K, sampled elements B*N*K*(Cq + C)) per example:
# the float64 reference materialises the latter; Triton's interpreter
# runs a kernel in numpy, so it gets smaller problems.
BUDGETS = {
    'cpp': (300_000, 3_000_000),
    'csr': (300_000, 3_000_000),
    'triton': (800, 40_000)
}
BACKEND_NAMES = ['cpp', 'triton', 'csr', 'reference']


@pytest.fixture(scope='module')
def isolated():
    worker = Isolated()
    yield worker
    worker.close()


@st.composite
def cases(draw, backend):
    points, elements = BUDGETS[backend]
    if draw(st.booleans()):  # kernel first: up to 11x11, maps to fit
        kh, kw = draw(st.integers(1, 11)), draw(st.integers(1, 11))
        B = draw(st.integers(1, 3))
        per_pixel = B * kh * kw
        H = draw(st.integers(1, max(1, min(128, points // per_pixel))))
        W = draw(st.integers(1, max(1, min(128, points // (per_pixel * H)))))
    else:  # map first: large maps (hypothesis favours small numbers)
        H = draw(st.integers(min(48, points // 48), min(128, points // 48)))
        W = draw(st.integers(1, max(1, min(128, points // H))))
        B = draw(st.integers(1, max(1, min(3, points // (H * W)))))
        kh = draw(st.integers(1, max(1, min(11, points // (B * H * W)))))
        kw = draw(st.integers(1, max(1, min(11, points // (B * H * W * kh)))))
        per_pixel = B * kh * kw
    channels = max(2, min(2048, elements // (per_pixel * H * W)))
    Cq = draw(st.integers(1, min(1024, channels - 1)))
    C = draw(st.integers(1, max(1, min(1024, channels - Cq))))
    offsets = draw(st.sampled_from(ops_cases.OFFSETS))
    # NaN/inf rows in query, key, value or grad_out, with offsets off the
    # pixel grid lines (on them, grid_sample's rounding may name the other
    # corner: docs/operator.md "On grid lines")
    poison = None
    if offsets in ('small', 'spread') and draw(st.booleans()):
        poison = (draw(st.sampled_from(ops_cases.POISONED)),
                  draw(st.sampled_from(['nan', 'inf',
                                        '-inf'])), draw(st.integers(1, 3)))
    return dict(
        backend=backend,
        dtype=draw(st.sampled_from(['float64', 'float32'])),
        B=B,
        Cq=Cq,
        C=C,
        H=H,
        W=W,
        kh=kh,
        kw=kw,
        dh=draw(st.integers(1, 3)),
        dw=draw(st.integers(1, 3)),
        offsets=offsets,
        poison=poison,
        layout=draw(st.sampled_from(ops_cases.LAYOUTS)),
        scale=draw(st.sampled_from([None, 0.5])),
        seed=draw(st.integers(0, 2**31 - 1)))


def _fuzz(isolated, case):
    try:
        problems = isolated(ops_cases.compare, case)
    except ChildCrashed as crash:
        pytest.fail(f'crashed on {case}: {crash}')
    assert not problems, f'{case}: ' + '; '.join(problems)


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not EXPLORE,
    print_blob=True,
    database=DirectoryBasedExampleDatabase(EXPLORE) if EXPLORE else None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(case=cases('cpp'))
def test_fuzz_cpp_against_reference(isolated, case):
    _fuzz(isolated, case)


@FUZZ
@given(case=cases('csr'))
def test_fuzz_csr_against_reference(isolated, case):
    _fuzz(isolated, case)


@settings(FUZZ, max_examples=max(1, EXAMPLES // 10))
@pytest.mark.triton
@given(case=cases('triton'))
def test_fuzz_triton_against_reference(isolated, case):
    _fuzz(isolated, case)


# What the fuzz once found, kept as fixed cases whatever it draws next.
FOUND = {
    # csr: an infinite key met with weight > 0 (logit -inf, probability 0)
    # made NaN the gradient of every offset of those queries, through the
    # guard of non-finite positions it then kept in the weights
    'infinite-key-csr':
    dict(
        dtype='float64',
        B=1,
        Cq=1,
        C=1,
        H=48,
        W=1,
        kh=1,
        kw=2,
        dh=1,
        dw=1,
        offsets='small',
        poison=('key', 'inf', 2),
        layout='contiguous',
        scale=None,
        seed=0),
    # cpp: a NaN query row reached the key gradient of a pixel its query
    # does not sample (the tile's scatter: 0 * NaN)
    'nan-query-cpp':
    dict(
        dtype='float64',
        B=1,
        Cq=1,
        C=2,
        H=1,
        W=2,
        kh=1,
        kw=1,
        dh=1,
        dw=1,
        offsets='small',
        poison=('query', 'nan', 1),
        layout='contiguous',
        scale=None,
        seed=0),
}


@pytest.mark.parametrize('backend', ['cpp', 'csr', 'triton'])
@pytest.mark.parametrize('found', sorted(FOUND))
def test_what_the_fuzz_found_stays_fixed(isolated, found, backend):
    _fuzz(isolated, dict(FOUND[found], backend=backend))


def test_a_crash_in_the_worker_is_reported_not_fatal(isolated):
    # What the fuzz relies on: a dying worker fails the call with the
    # signal, and the next call gets a fresh worker.
    with pytest.raises(
            ChildCrashed,
            match='(?s)killed by SIGABRT.*\n'
            '==1==ERROR: AddressSanitizer'):
        isolated(stderr_then_abort, '==1==ERROR: AddressSanitizer: (test)')
    assert isolated(math.sqrt, 4.0) == 2.0


# Spread offsets through the default (cpp) backend fill a tile's whole
# window (1 + 8 * 4K pixels); scratch arrays one pixel short abort the
# process.
@pytest.mark.parametrize('B, Cq, C, H, W, kernel', [
    (1, 3, 5, 16, 16, (1, 1)),
    (2, 16, 17, 24, 24, (1, 1)),
    (1, 4, 4, 24, 24, (1, 2)),
    (1, 4, 4, 96, 96, (3, 3)),
])
@pytest.mark.parametrize('dtype', ['float32', 'float64'])
def test_spread_offsets_do_not_corrupt_memory(isolated, B, Cq, C, H, W, kernel,
                                              dtype):
    error = isolated(ops_cases.spread_call, B, Cq, C, H, W, kernel, dtype)
    assert error < (1e-4 if dtype == 'float32' else 1e-10)


@pytest.mark.parametrize('backend', BACKEND_NAMES)
@pytest.mark.parametrize('shape', [(1, 3, 4, 0), (1, 3, 0, 5), (0, 3, 4, 5),
                                   (2, 0, 4, 5), (0, 0, 0, 0)])
def test_empty_inputs_give_empty_outputs_and_zero_gradients(
        isolated, backend, shape):
    # W = 0 then backward: a division by zero killed the process (SIGFPE).
    out_shape, grad_shapes, zeros, finite = isolated(ops_cases.empty_call,
                                                     backend, shape, 4)
    B, C, H, W = shape
    assert out_shape == shape
    assert grad_shapes == [(B, 4, H, W), (B, 4, H, W), shape, (B, 18, H, W)]
    assert zeros and finite


@pytest.mark.parametrize('backend', BACKEND_NAMES)
@pytest.mark.parametrize('shape', [(1, 3, 4, 0), (1, 3, 0, 5), (0, 3, 4, 5),
                                   (2, 0, 4, 5), (0, 0, 0, 0)])
def test_each_backend_alone_handles_empty_problems(isolated, backend, shape):
    # Below the front end's own check, which answers empty problems
    # first: W = 0 divided by zero in the cpp kernel's tiling (SIGFPE);
    # csr, reference and triton reshaped with -1, which 0 elements leave
    # undefined, and grid_sample refuses empty maps.
    B, C, H, W = shape
    out_shape, grad_shapes, zeros = isolated(ops_cases.empty_backend_call,
                                             backend, shape)
    assert out_shape == shape
    assert grad_shapes == [(B, 4, H, W), (B, 4, H, W), shape, (B, 18, H, W)]
    assert zeros


@pytest.mark.parametrize('backend', BACKEND_NAMES)
def test_no_query_channels_average_the_samples(backend):
    # Cq = 0 is not empty: every logit is 0, the softmax uniform.
    v = torch.randn(1, 3, 5, 6, dtype=torch.float64)
    q = v.new_zeros(1, 0, 5, 6)
    o = torch.randn(1, 18, 5, 6, dtype=torch.float64)
    expected = snl(
        torch.zeros(1, 1, 5, 6, dtype=torch.float64),
        torch.zeros(1, 1, 5, 6, dtype=torch.float64),
        v,
        o,
        3,
        backend='reference')
    torch.testing.assert_close(
        snl(q, q, v, o, 3, backend=backend), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('backend', BACKEND_NAMES)
@pytest.mark.parametrize('bad', [float('nan'), float('inf'), -float('inf')])
def test_non_finite_offsets_make_their_queries_nan(backend, bad):
    # Silently dropping the point (the cpp kernel did) would hide a
    # diverging run: the query's output and its gradients must be NaN.
    g = torch.Generator().manual_seed(0)
    q, k, v = (
        torch.randn(2, 3, 5, 6, generator=g, dtype=torch.float64)
        for _ in range(3))
    o = torch.randn(2, 18, 5, 6, generator=g, dtype=torch.float64)
    o[0, 4, 2, 3] = bad  # point 2 of query (0, 2, 3), its dy
    o[1, 17, 4, 0] = bad  # point 8 of query (1, 4, 0), its dx
    xs = [x.requires_grad_() for x in (q, k, v, o)]
    out = snl(*xs, 3, backend=backend)
    gq, gk, gv, go = torch.autograd.grad(out.sum(), xs)
    affected = torch.zeros(2, 5, 6, dtype=torch.bool)
    affected[0, 2, 3] = affected[1, 4, 0] = True
    for name, x in (('out', out), ('grad_query', gq), ('grad_offset', go)):
        assert torch.isnan(x).all(1).eq(affected).all(), name
        assert torch.isfinite(x.permute(0, 2, 3, 1)[~affected]).all(), name
    # NaN reaches the key and value gradients at the pixels sampled
    assert torch.isnan(gk).any() and torch.isnan(gv).any()
    # other queries: as if the affected ones were not there
    clean = o.detach().clone()
    clean[0, 4, 2, 3] = clean[1, 17, 4, 0] = 0.0
    expected = snl(
        q.detach(), k.detach(), v.detach(), clean, 3, backend='reference')
    torch.testing.assert_close(
        out.detach()[~affected[:, None].expand_as(out)],
        expected[~affected[:, None].expand_as(out)],
        rtol=1e-10,
        atol=1e-10)
