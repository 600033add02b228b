"""The Triton backend's internals: its refusal without a GPU or the
interpreter, channel chunks, the deterministic backward's ordered sums,
the forward and backward variants chosen by SSANET_TRITON_FORWARD and
SSANET_TRITON_BACKWARD, the halo forward's own paths.

The launch table under the interpreter: test_triton_launch_table.py;
registers and spills ahead of time: test_triton_resources.py.
"""
import warnings

import pytest
import torch

from mmseg_ssanet.ops import sparse_nonlocal_attention as snl
from tests.ops_cases import TRITON_DEVICE, fresh_python
from tests.ops_cases import random_inputs as _inputs

TRITON_ON_CPU_SCRIPT = r'''
import os
os.environ.pop('TRITON_INTERPRET', None)
import torch
from mmseg_ssanet.ops import sparse_nonlocal_attention as snl
q = torch.randn(1, 4, 5, 6)
try:
    snl(q, q, q, torch.zeros(1, 18, 5, 6), 3, backend='triton')
except RuntimeError as err:
    print('ERROR', err)
'''


@pytest.mark.triton
def test_triton_on_cpu_without_interpreter_says_so():
    proc = fresh_python(TRITON_ON_CPU_SCRIPT)
    assert proc.returncode == 0, proc.stderr
    assert ("ERROR SNL backend 'triton' cannot run here: the triton kernel "
            'runs on CUDA tensors, or on CPU tensors under '
            'TRITON_INTERPRET=1; got cpu') in proc.stdout


NO_TRITON_SCRIPT = r'''
import sys, warnings
sys.modules['triton'] = None  # as where triton is not installed
import torch
from mmseg_ssanet.ops import resolve_backend, sparse_nonlocal_attention as snl
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    print('CUDA DEFAULT', resolve_backend(None, torch.device('cuda')))
print('WARNING', [str(w.message) for w in caught])
q = torch.randn(1, 2, 3, 4)
try:
    snl(q, q, q, torch.zeros(1, 18, 3, 4), 3, backend='triton')
except RuntimeError as err:
    print('ERROR', err)
print('CPU DEFAULT', resolve_backend(None, torch.device('cpu')))
'''


def test_without_triton_cuda_falls_back_and_triton_is_refused():
    proc = fresh_python(NO_TRITON_SCRIPT)
    assert proc.returncode == 0, proc.stderr
    assert 'CUDA DEFAULT csr' in proc.stdout
    assert "'csr' backend because triton is not installed" in proc.stdout
    assert ("ERROR SNL backend 'triton' cannot run here: triton is not "
            "installed") in proc.stdout
    assert 'CPU DEFAULT cpp' in proc.stdout


def test_a_triton_without_the_kernels_features_is_refused_and_cuda_falls_back(
        monkeypatch):
    # A triton older than 2.1 has no tl.static_range; triton 2.1 (torch
    # 2.1's own) has no CPU interpreter. Where the installed triton has
    # them, one is taken away: the backend must then refuse, naming the
    # triton version and the one needed, and the CUDA default must fall
    # back to csr with the one-time warning (resolve_backend needs no GPU).
    import warnings

    import triton.language as tl

    from mmseg_ssanet import features
    from mmseg_ssanet.ops import functional, resolve_backend
    monkeypatch.delattr(tl, 'static_range')
    monkeypatch.setattr(functional, '_warned', set())
    import triton
    for device in ('cuda', 'cpu'):
        reason = features.triton_missing(device)
        assert reason.startswith(f'triton {triton.__version__} lacks ')
        assert 'tl.static_range' in reason
        assert features.TRITON_NEEDED[device] in reason
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        assert resolve_backend(None, torch.device('cuda')) == 'csr'
        assert resolve_backend(None, torch.device('cuda')) == 'csr'
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, messages
    assert "'csr' backend because triton " in messages[0]
    assert features.TRITON_NEEDED['cuda'] in messages[0]
    with pytest.raises(
            RuntimeError,
            match="backend 'triton' cannot run "
            "here: triton .* lacks tl.static_range"):
        resolve_backend('triton', torch.device('cpu'))


@pytest.mark.triton
def test_triton_takes_channels_in_chunks():
    # The kernels hold channels 32 at a time (launch_config): rows of
    # several chunks, the last one partial, match the reference, values
    # and gradients.
    q, k, v, o = _inputs(
        B=1, Cq=70, C=100, H=3, W=4, K=9, device=TRITON_DEVICE)
    outs = {}
    for backend in ('triton', 'reference'):
        out = snl(q, k, v, o, 3, backend=backend)
        weight = torch.linspace(
            -1, 1, out.numel(), dtype=out.dtype, device=out.device)
        grads = torch.autograd.grad((out * weight.view_as(out)).sum(),
                                    (q, k, v, o))
        outs[backend] = (out, *grads)
    for got, want in zip(outs['triton'], outs['reference']):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


def _recorded(monkeypatch, name, modules, record=lambda *args: 1):
    """A list that gets ``record(*args)`` at each call of the function
    ``name`` of ``modules`` (each module's reference to it replaced)."""
    calls = []
    run = getattr(modules[0], name)

    def recording(*args, **kwargs):
        calls.append(record(*args))
        return run(*args, **kwargs)

    for module in modules:
        monkeypatch.setattr(module, name, recording)
    return calls


@pytest.fixture
def sorted_sums(monkeypatch):
    """A record of each call of the owner-computes key/value sums (the
    backward without atomics)."""
    from mmseg_ssanet.ops.backends import triton as triton_backend
    from mmseg_ssanet.ops.backends import triton_sums
    return _recorded(monkeypatch, 'key_value_grads_in_order',
                     (triton_backend, triton_sums))


def _weighted_grads(inputs,
                    backend,
                    kernel=3,
                    dilation=1,
                    weight=None,
                    deterministic=False):
    """The four gradients of sum(out * weight) (weight: -1 to 1 over the
    output's entries unless given), under
    ``torch.use_deterministic_algorithms(deterministic)``."""
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(deterministic)
    try:
        out = snl(*inputs, kernel, dilation=dilation, backend=backend)
        if weight is None:
            weight = torch.linspace(-1, 1, out.numel(), dtype=out.dtype)
        return torch.autograd.grad(
            (out * weight.to(out.device).view_as(out)).sum(), inputs)
    finally:
        torch.use_deterministic_algorithms(before)


@pytest.mark.triton
def test_triton_deterministic_backward_orders_its_sums(sorted_sums):
    # torch.use_deterministic_algorithms(True): key/value gradients come
    # from the owner-computes pass (no atomics), bitwise equal run to run,
    # and equal to the reference; NaN offsets give the same NaN pattern.
    inputs = _inputs(B=2, Cq=5, C=37, H=4, W=5, K=9, device=TRITON_DEVICE)
    with torch.no_grad():
        inputs[3][0, 3, 1, 1] = float('nan')

    def grads(backend, deterministic):
        return _weighted_grads(inputs, backend, deterministic=deterministic)

    with pytest.MonkeyPatch.context() as env:
        # deterministic mode overrides an explicit choice of atomics
        env.setenv('SSANET_TRITON_BACKWARD', 'atomic')
        first, again = grads('triton', True), grads('triton', True)
        assert len(sorted_sums) == 2
        grads('triton', False)
        assert len(sorted_sums) == 2  # the atomics, as asked
    for a, b, want in zip(first, again, grads('reference', False)):
        assert torch.equal(a.isnan(), want.isnan())
        assert torch.equal(a.nan_to_num(), b.nan_to_num())
        torch.testing.assert_close(
            a.nan_to_num(), want.nan_to_num(), rtol=1e-9, atol=1e-9)


@pytest.fixture
def halo_backwards(monkeypatch):
    """The halo backward's launches, counted."""
    from mmseg_ssanet.ops.backends import triton as backend
    return _recorded(monkeypatch, 'halo_backward', (backend, ))


@pytest.mark.triton
def test_triton_backward_variant_is_chosen_by_the_environment(
        sorted_sums, halo_backwards, monkeypatch):
    # SSANET_TRITON_BACKWARD=sorted takes the owner-computes sums without
    # deterministic mode; 'atomic' the atomics; 'halo' (and unset: the
    # default) the halo kernels; any other value is named, with the
    # choices.
    inputs = _inputs(B=1, Cq=6, C=35, H=5, W=4, K=9, device=TRITON_DEVICE)

    def grads(backend='triton'):
        return _weighted_grads(inputs, backend)

    want = grads('reference')
    monkeypatch.setenv('SSANET_TRITON_BACKWARD', 'sorted')
    first, again = grads(), grads()
    assert len(sorted_sums) == 2 and not halo_backwards
    for a, b, w in zip(first, again, want):
        assert torch.equal(a, b)
        torch.testing.assert_close(a, w, rtol=1e-9, atol=1e-9)
    monkeypatch.setenv('SSANET_TRITON_BACKWARD', 'atomic')
    for a, w in zip(grads(), want):
        torch.testing.assert_close(a, w, rtol=1e-9, atol=1e-9)
    assert len(sorted_sums) == 2 and not halo_backwards
    monkeypatch.setenv('SSANET_TRITON_BACKWARD', 'halo')
    grads()
    monkeypatch.delenv('SSANET_TRITON_BACKWARD')
    for a, w in zip(grads(), want):
        torch.testing.assert_close(a, w, rtol=1e-9, atol=1e-9)
    assert len(halo_backwards) == 2 and len(sorted_sums) == 2
    monkeypatch.setenv('SSANET_TRITON_BACKWARD', 'scatter')
    with pytest.raises(
            ValueError,
            match=r"SSANET_TRITON_BACKWARD='scatter' names no "
            r'backward .* choose one of sorted, atomic, halo'):
        grads()


@pytest.fixture
def halo_launches(monkeypatch):
    """The halo forward's launches, counted."""
    from mmseg_ssanet.ops.backends import triton as backend
    return _recorded(monkeypatch, '_halo_forward', (backend, ),
                     lambda *args: args[-4])  # the (B, H, W) shape


@pytest.mark.triton
def test_triton_forward_variant_is_chosen_by_the_environment(
        halo_launches, monkeypatch):
    q, k, v, o = _inputs(B=1, Cq=3, C=4, H=3, W=4, K=9, device=TRITON_DEVICE)
    with torch.no_grad():
        want = snl(q, k, v, o, 3, backend='reference')
        monkeypatch.setenv('SSANET_TRITON_FORWARD', 'halo')
        torch.testing.assert_close(
            snl(q, k, v, o, 3, backend='triton'), want, rtol=1e-9, atol=1e-9)
        assert halo_launches == [(1, 3, 4)]
        monkeypatch.setenv('SSANET_TRITON_FORWARD', 'gather')
        torch.testing.assert_close(
            snl(q, k, v, o, 3, backend='triton'), want, rtol=1e-9, atol=1e-9)
        assert len(halo_launches) == 1
        monkeypatch.delenv('SSANET_TRITON_FORWARD')
        snl(q, k, v, o, 3, backend='triton')  # the default: halo
        assert len(halo_launches) == 2
        monkeypatch.setenv('SSANET_TRITON_FORWARD', 'dense')
        with pytest.raises(
                ValueError,
                match=r"SSANET_TRITON_FORWARD='dense' names no forward .* "
                r'choose one of gather, halo'):
            snl(q, k, v, o, 3, backend='triton')


@pytest.mark.triton
def test_float64_takes_gather_and_sorted_where_triton_refuses_it(
        halo_launches, halo_backwards, sorted_sums, monkeypatch):
    # where triton cannot compile the halo kernels' float64 products
    # (triton 2.1.0 on a GPU), float64 inputs take the gather forward and
    # the sorted backward, with one warning that says so; other dtypes
    # keep the halo kernels
    from mmseg_ssanet.ops.backends import triton as backend
    from mmseg_ssanet.ops.backends import triton_halo
    monkeypatch.setattr(triton_halo, 'float64_products_refused',
                        lambda device_type: 'RuntimeError: refused')
    monkeypatch.setattr(backend, '_warned_float64', [])
    inputs = _inputs(B=1, Cq=3, C=5, H=4, W=5, K=9, device=TRITON_DEVICE)
    with pytest.warns(UserWarning, match='gather forward and the sorted'):
        got = _weighted_grads(inputs, 'triton')
    assert not halo_launches and not halo_backwards
    assert len(sorted_sums) == 1
    for a, b in zip(got, _weighted_grads(inputs, 'reference')):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # said once
        _weighted_grads(inputs, 'triton')
    _weighted_grads([x.float() for x in inputs], 'triton')
    assert len(halo_launches) == len(halo_backwards) == 1


def test_maps_beyond_int32_offsets_are_refused():
    # B*H*W x channels >= 2**31 would wrap the kernels' int32 row offsets
    # on a GPU: refused, naming the product, before anything is copied
    # (zero-stride views of a single element)
    from mmseg_ssanet.ops.backends.triton import attention

    def view(channels, side=2048):
        return torch.zeros(1, 1, 1, 1).expand(1, channels, side, side)

    with pytest.raises(
            ValueError,
            match=r'1\*2048\*2048 pixels x 512 '
            r'channels = 2147483648 reaches 2\*\*31'):
        attention(
            view(256), view(256), view(512), view(162), (9, 9), (1, 1), None)
    # one channel fewer passes the check (and is not run here)
    from mmseg_ssanet.ops.backends import triton as backend
    backend._check_addressable(view(256), view(511), view(162))


def _poison_value(v, where):
    with torch.no_grad():
        v[where] = float('inf')
    return v


# Each case takes one of the halo forward's paths: every corner in the
# halo (several 8x8 tiles, partial ones at the edges, two images); offsets
# beyond its 2-pixel margin (those corners gathered); an inf value inside
# a tile's halo that some queries sample and others do not (its chunk
# gathered: the product over the halo would make 0 * inf = NaN for all);
# dilated and non-square windows.
HALO_CASES = {
    'in the halo': dict(B=2, H=11, W=17, K=9, offset_scale=0.5),
    'beyond the margin': dict(B=1, H=12, W=9, K=9, offset_scale=6.0),
    'inf value in the halo': dict(B=1, H=9, W=10, K=9, offset_scale=0.3),
    'dilated 5x3': dict(B=1, H=10, W=12, K=15, offset_scale=1.0),
}


@pytest.fixture
def gpu_tiles(monkeypatch):
    """The GPU's halo geometry (8x8 tiles) under the interpreter too: its
    table's 16x16 tiles would hold every corner of these small maps in
    their halos, and no case would reach beyond one."""
    from mmseg_ssanet.ops.backends.triton_launch import LAUNCH_TABLE_ENV
    monkeypatch.setenv(LAUNCH_TABLE_ENV, 'gpu')


def _halo_case(case):
    """Inputs, window and dilation of a HALO_CASES entry."""
    geometry = dict(HALO_CASES[case])
    offset_scale = geometry.pop('offset_scale')
    inputs = _inputs(
        Cq=5,
        C=37,
        offset_scale=offset_scale,
        device=TRITON_DEVICE,
        **geometry)
    kernel, dilation = ((5, 3), (2, 1)) if case == 'dilated 5x3' else (3, 1)
    return (*inputs, kernel, dilation)


@pytest.mark.triton
@pytest.mark.parametrize('case', sorted(HALO_CASES))
def test_halo_forward_matches_reference(case, halo_launches, gpu_tiles,
                                        monkeypatch):
    q, k, v, o, kernel, dilation = _halo_case(case)
    if case == 'inf value in the halo':
        v = _poison_value(v.detach(), (0, 7, 4, 4))
    monkeypatch.setenv('SSANET_TRITON_FORWARD', 'halo')
    with torch.no_grad():
        got = snl(q, k, v, o, kernel, dilation=dilation, backend='triton')
        want = snl(q, k, v, o, kernel, dilation=dilation, backend='reference')
    assert halo_launches
    assert torch.equal(got.isnan(), want.isnan())
    assert torch.equal(got.isinf(), want.isinf())
    if case == 'inf value in the halo':
        # some queries sample the inf pixel, most of the tile does not
        assert 0 < int(got.isnan().sum() + got.isinf().sum()) < got.numel()
    finite = want.isfinite()
    torch.testing.assert_close(got[finite], want[finite], rtol=1e-9, atol=1e-9)


@pytest.mark.triton
@pytest.mark.parametrize('case', sorted(HALO_CASES))
def test_halo_backward_matches_reference(case, gpu_tiles, monkeypatch):
    # the forward's paths, in the backward: every corner in a tile's halo
    # (each pixel's gradients from the query tiles whose halos hold it),
    # corners beyond the margin (atomics), a grad_out entry that is inf
    # (its corners one atomic each: 0 * inf would reach every pixel), a
    # key with an inf (the query gradient's chunk gathered corner by
    # corner: the product over the halo would reach every query)
    q, k, v, o, kernel, dilation = _halo_case(case)
    weight = torch.linspace(-1, 1, v.numel(), dtype=v.dtype).view_as(v)
    if case == 'inf value in the halo':  # here: in grad_out and a key
        weight = _poison_value(weight, (0, 7, 4, 4))
        k = _poison_value(k.detach(), (0, 2, 2, 7)).requires_grad_()

    monkeypatch.setenv('SSANET_TRITON_BACKWARD', 'halo')
    got, want = (
        _weighted_grads((q, k, v, o), backend, kernel, dilation, weight)
        for backend in ('triton', 'reference'))
    for name, a, b in zip('qkvo', got, want):
        assert torch.equal(a.isfinite(), b.isfinite()), name
        finite = b.isfinite()
        torch.testing.assert_close(
            a[finite], b[finite], rtol=1e-9, atol=1e-9, msg=name)
    if case == 'inf value in the halo':
        # the query gradient of the queries that sample the inf key, the
        # value gradient of the pixels the inf grad_out row reaches
        for grad in (got[0], got[2]):
            bad = ~grad.isfinite()
            assert 0 < int(bad.sum()) < bad.numel()


@pytest.mark.triton
@pytest.mark.parametrize('offset_scale', [0.3, 6.0])
def test_halo_backward_under_deterministic_algorithms(offset_scale,
                                                      sorted_sums, gpu_tiles,
                                                      monkeypatch):
    # torch.use_deterministic_algorithms(True) keeps SSANET_TRITON_BACKWARD
    # =halo: where every corner lies in its tile's halo (offsets within
    # the 2-pixel margin) its own products give the key and value
    # gradients, in a fixed order; where some do not (offsets of a few
    # pixels), their atomics would add in any order, so those two come
    # from the sorted sums. Both equal the reference.
    inputs = _inputs(
        B=1,
        Cq=5,
        C=37,
        H=9,
        W=10,
        K=9,
        offset_scale=offset_scale,
        device=TRITON_DEVICE)
    monkeypatch.setenv('SSANET_TRITON_BACKWARD', 'halo')
    want = _weighted_grads(inputs, 'reference')
    got = _weighted_grads(inputs, 'triton', deterministic=True)
    far = offset_scale > 2
    assert len(sorted_sums) == int(far)
    # the atomics, without deterministic mode
    _weighted_grads(inputs, 'triton')
    assert len(sorted_sums) == int(far)
    for name, a, b in zip('qkvo', got, want):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=name)
