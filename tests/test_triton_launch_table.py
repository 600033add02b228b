"""The Triton kernels with the launch table a GPU runs, under the interpreter.

CPU tensors normally take the interpreter's table (64 queries a program,
16x16 halo tiles); a GPU takes 8 queries a program and 8x8 tiles, so its
partial blocks and masks differ.
``SSANET_TRITON_LAUNCH_TABLE=gpu`` makes the interpreter run the GPU's
table: values and the four gradients against ``reference`` in float64, the
gather kernels with the atomic and the deterministic backward, on shapes
where every block is partial somewhere, and the halo backward's sums; and
the halo kernels' blocks of halo pixels tile the padded halo for any
window.
"""
import pytest
import torch

from mmseg_ssanet.ops import sparse_nonlocal_attention as snl
from mmseg_ssanet.ops.backends import triton as triton_backend
from mmseg_ssanet.ops.backends.triton_launch import LAUNCH_TABLE_ENV
from tests.ops_cases import TRITON_DEVICE
from tests.ops_cases import random_inputs as _inputs

pytestmark = pytest.mark.triton

# 13 queries (one full 8-query block, one of 5), a 3x5 grid (K = 15,
# padded to 16), Cq = 5 and C = 37 (a partial 32-channel chunk after a
# full one) at dilation 2, offsets pushing points off the map. The
# interpreter runs a program op by op, so sizes stay small.
SHAPE = dict(B=1, Cq=5, C=37, H=1, W=13, K=15, offset_scale=2.5)
KERNEL, DILATION = (3, 5), 2


@pytest.fixture
def launches(monkeypatch):
    """The ``interpreted`` flag of every launch the backend configures,
    with the gather forward and the atomic backward (the kernels whose
    blocks of queries this table sizes)."""
    monkeypatch.setenv('SSANET_TRITON_FORWARD', 'gather')
    monkeypatch.setenv('SSANET_TRITON_BACKWARD', 'atomic')
    seen = []
    configure = triton_backend.launch_config

    def recorded(kernel, cq, c, k, interpreted=False):
        seen.append((kernel, interpreted))
        return configure(kernel, cq, c, k, interpreted)

    monkeypatch.setattr(triton_backend, 'launch_config', recorded)
    return seen


def _values_and_grads(backend,
                      inputs,
                      deterministic=False,
                      kernel=KERNEL,
                      dilation=DILATION):
    xs = [x.detach().requires_grad_() for x in inputs]
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(deterministic)
    try:
        out = snl(*xs, kernel, dilation, scale=0.4, backend=backend)
        weight = torch.linspace(
            -1, 1, out.numel(), dtype=out.dtype, device=out.device)
        grads = torch.autograd.grad((out * weight.view_as(out)).sum(), xs)
    finally:
        torch.use_deterministic_algorithms(before)
    return [out, *grads]


@pytest.mark.parametrize('deterministic', [False, True])
@pytest.mark.parametrize('table', ['gpu', 'interpreter'])
def test_launch_table_matches_reference(monkeypatch, launches, table,
                                        deterministic):
    monkeypatch.setenv(LAUNCH_TABLE_ENV, table)
    inputs = _inputs(**SHAPE, device=TRITON_DEVICE)
    got = _values_and_grads('triton', inputs, deterministic)
    want = _values_and_grads('reference', inputs)
    _assert_table(launches, table)
    _assert_close(got, want)


def test_gpu_launch_table_odd_grid(monkeypatch, launches):
    # the paper's kind of grid: 7x9 (K = 63, padded to 64), 9 queries
    monkeypatch.setenv(LAUNCH_TABLE_ENV, 'gpu')
    inputs = _inputs(
        B=1, Cq=3, C=6, H=1, W=9, K=63, offset_scale=3.0, device=TRITON_DEVICE)
    got = _values_and_grads('triton', inputs, kernel=(7, 9), dilation=1)
    want = _values_and_grads('reference', inputs, kernel=(7, 9), dilation=1)
    _assert_table(launches, 'gpu')
    _assert_close(got, want)


@pytest.mark.parametrize('table', ['gpu', 'interpreter'])
def test_launch_table_halo_backward(monkeypatch, table):
    # the halo backward's key and value gradients take 64 channels a
    # program on a GPU, up to 128 under the interpreter
    from mmseg_ssanet.ops.backends import triton_sums
    seen = []
    configure = triton_sums.halo_key_value_launch

    def recorded(n, dtype, interpreted=False):
        seen.append(interpreted)
        return configure(n, dtype, interpreted)

    monkeypatch.setattr(triton_sums, 'halo_key_value_launch', recorded)
    monkeypatch.setenv(LAUNCH_TABLE_ENV, table)
    monkeypatch.setenv('SSANET_TRITON_BACKWARD', 'halo')
    inputs = _inputs(**SHAPE, device=TRITON_DEVICE)
    got = _values_and_grads('triton', inputs)
    want = _values_and_grads('reference', inputs)
    assert seen == [table == 'interpreter'] * 2  # key, value gradients
    _assert_close(got, want)


def _assert_table(launches, table):
    fused = [(k, flag) for k, flag in launches if k != 'segment_sum']
    assert {k for k, _ in fused} == {'forward', 'backward'}
    assert all(flag == (table == 'interpreter') for _, flag in fused)


def _assert_close(got, want):
    names = ['output', 'query', 'key', 'value', 'offset']
    for name, a, b in zip(names, got, want):
        torch.testing.assert_close(
            a, b, rtol=1e-9, atol=1e-9, msg=lambda m: f'{name}: {m}')


def test_gpu_launch_table_gradcheck(monkeypatch, launches):
    monkeypatch.setenv(LAUNCH_TABLE_ENV, 'gpu')
    # 11 queries: one full 8-query block and one of 3.
    q, k, v, o = _inputs(
        B=1, Cq=2, C=3, H=1, W=11, K=9, offset_scale=2.0, device=TRITON_DEVICE)
    assert torch.autograd.gradcheck(
        lambda *x: snl(*x, 3, 1, backend='triton'), (q, k, v, o),
        fast_mode=True)
    _assert_table(launches, 'gpu')


def test_gpu_launch_table_takes_eight_queries_a_program():
    config = triton_backend.launch_config('forward', 5, 37, 63)
    assert (config['BLOCK_Q'], config['K_PAD'], config['BLOCK_C']) == (8, 64,
                                                                       32)
    config = triton_backend.launch_config('backward', 5, 37, 63)
    assert (config['BLOCK_Q'], config['BLOCK_C']) == (8, 32)
    assert 'K_PAD' not in config  # the backward holds no logit tile
    assert triton_backend.launch_config(
        'forward', 5, 37, 63, interpreted=True)['BLOCK_Q'] == 64


@pytest.mark.parametrize('window', [(3, 3), (5, 3), (7, 7), (9, 9), (11, 11),
                                    (13, 5)])
@pytest.mark.parametrize('dilation', [(1, 1), (2, 1), (3, 3)])
@pytest.mark.parametrize('interpreted', [False, True])
def test_halo_blocks_tile_the_padded_halo(window, dilation, interpreted):
    # Each halo kernel walks the padded halo a block of pixels at a time and
    # stores whole blocks into [tile, HALO_PAD] scratch rows: a block
    # reaching past the padding would write into the next query's row.
    from mmseg_ssanet.ops.backends.triton_launch import (halo_backward_launch,
                                                         halo_config)
    config = halo_config(256, 512, window, dilation, interpreted)
    assert config['HALO_PAD'] >= config['HALO_H'] * config['HALO_W']
    blocks = [config['BLOCK_H']] + [
        halo_backward_launch(kernel, interpreted)['BLOCK_H']
        for kernel in ('points', 'gradients')
    ]
    for block in blocks:
        assert config['HALO_PAD'] % block == 0, (block, config)
    assert config['TILE_H'] == config['TILE_W'] == (16 if interpreted else 8)
