"""SparseNonLocal2d: construction, registry, eq. 7, sampling numbers."""
import pytest
import torch
from mmseg.registry import MODELS

import mmseg_ssanet  # noqa: F401
from mmseg_ssanet.features import HAS_CUSTOM_OP
from mmseg_ssanet.models import SparseNonLocal2d
from mmseg_ssanet.models.blocks import kernel_size_for
from mmseg_ssanet.ops import sparse_nonlocal_attention


@pytest.mark.parametrize('num_samples, grid', [(9, (3, 3)), (49, (7, 7)),
                                               (81, (9, 9)), (99, (9, 11)),
                                               (121, (11, 11)), (1, (1, 1)),
                                               (15, (3, 5))])
def test_paper_sampling_numbers(num_samples, grid):
    assert kernel_size_for(num_samples) == grid
    block = SparseNonLocal2d(16, num_samples=num_samples)
    assert block.kernel_size == grid and block.num_samples == num_samples
    assert block.offset.conv.out_channels == 2 * num_samples
    x = torch.randn(1, 16, 12, 13)
    assert block(x).shape == x.shape


@pytest.mark.parametrize('num_samples, suggestion',
                         [(50, '49 (7x7) or 63 (7x9)'),
                          (10, '9 (3x3) or 15 (3x5)'),
                          (100, '99 (9x11) or 121 (11x11)')])
def test_bad_sampling_number_suggests_one(num_samples, suggestion):
    with pytest.raises(ValueError) as err:
        SparseNonLocal2d(16, num_samples=num_samples)
    assert f'num_samples={num_samples} ' in str(err.value)
    assert suggestion in str(err.value)


@pytest.mark.parametrize('kwargs, error, match', [
    (dict(num_samples=0), ValueError, 'num_samples must be a positive int'),
    (dict(num_samples=8.0), ValueError, 'num_samples must be a positive'),
    (dict(kernel_size=(3, 0)), ValueError, 'kernel_size must be positive'),
    (dict(dilation=0), ValueError, 'dilation must be positive'),
    (dict(reduction=0), ValueError, 'reduction must be an int'),
    (dict(backend='dense'), ValueError, 'unknown backend'),
])
def test_bad_config_is_refused_at_construction(kwargs, error, match):
    with pytest.raises(error, match=match):
        SparseNonLocal2d(16, **kwargs)


def test_registered_and_built_from_config():
    block = MODELS.build(
        dict(
            type='SparseNonLocal2d',
            in_channels=32,
            reduction=4,
            num_samples=49,
            dilation=2,
            norm_cfg=dict(type='BN')))
    assert isinstance(block, SparseNonLocal2d)
    assert block.theta.conv.out_channels == 8
    assert block.g.conv.out_channels == 32  # g keeps C channels (paper)
    assert block.gamma.with_norm


def test_forward_is_eq_7():
    torch.manual_seed(0)
    block = SparseNonLocal2d(8, num_samples=9).eval()
    torch.nn.init.normal_(block.offset.conv.weight, std=0.5)
    x = torch.randn(2, 8, 7, 6)
    y = sparse_nonlocal_attention(
        block.theta(x),
        block.phi(x),
        block.g(x),
        block.offset(x), (3, 3),
        backend='reference')
    torch.testing.assert_close(
        block(x), x + block.gamma(y), rtol=1e-5, atol=1e-5)


def test_offsets_start_at_zero_and_learn():
    block = SparseNonLocal2d(8, num_samples=9)
    x = torch.randn(2, 8, 7, 6)
    assert block.sample_offsets(x).abs().max() == 0  # the regular grid
    block(x).square().mean().backward()
    assert block.offset.conv.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in block.parameters())


def test_zeros_init_makes_identity():
    block = SparseNonLocal2d(8, num_samples=9, zeros_init=True)
    x = torch.randn(1, 8, 5, 5)
    torch.testing.assert_close(block(x), x)


def test_wrong_input_channels_named():
    block = SparseNonLocal2d(8, num_samples=9)
    with pytest.raises(
            ValueError,
            match=r'expects \[B, 8, H, W\] input, '
            r'got shape \(1, 7, 5, 5\)'):
        block(torch.randn(1, 7, 5, 5))


@pytest.mark.parametrize('backend', ['cpp', 'triton', 'csr'])
def test_block_backends_agree_with_reference(backend):
    torch.manual_seed(0)
    blocks = [
        SparseNonLocal2d(8, num_samples=9, backend=b).double()
        for b in ('reference', backend)
    ]
    blocks[1].load_state_dict(blocks[0].state_dict())
    torch.nn.init.normal_(blocks[0].offset.conv.weight, std=0.5)
    blocks[1].offset.conv.weight.data.copy_(blocks[0].offset.conv.weight)
    x = torch.randn(2, 8, 5, 7, dtype=torch.float64)
    outs, grads = [], []
    for block in blocks:
        out = block(x)
        out.square().sum().backward()
        outs.append(out)
        grads.append([p.grad for p in block.parameters()])
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-10, atol=1e-10)
    for a, b in zip(grads[1], grads[0]):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


def test_block_default_backend_follows_the_device():
    block = SparseNonLocal2d(8, num_samples=9)
    assert block.backend is None  # chosen per call, by the input's device
    from mmseg_ssanet.ops import resolve_backend
    assert resolve_backend(block.backend, torch.device('cpu')) == 'cpp'


@pytest.mark.skipif(
    not HAS_CUSTOM_OP,
    reason='torch.library.custom_op '
    '(torch >= 2.4) is needed to trace through the kernel')
def test_block_compiles_with_no_graph_break_on_cpu():
    # The whole block (mmcv's convs, the offset branch, the SNL op on the
    # default cpp kernel, the residual) in one graph, forward and backward.
    torch.manual_seed(0)
    block = SparseNonLocal2d(16, num_samples=9)
    torch.nn.init.normal_(block.offset.conv.weight, std=0.5)
    x = torch.randn(2, 16, 6, 9, requires_grad=True)
    torch._dynamo.reset()
    compiled = torch.compile(block, fullgraph=True)
    outs, grads = [], []
    for fn in (compiled, block):
        out = fn(x)
        outs.append(out)
        grads.append(
            torch.autograd.grad(out.square().sum(), [x, *block.parameters()]))
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
