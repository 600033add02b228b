"""SNLHead and SSANetDecoder as parts."""
import os.path as osp

import pytest
import torch
from mmseg.registry import MODELS

import mmseg_ssanet  # noqa: F401
from mmseg_ssanet.models import SNLHead, SparseNonLocal2d, SSANetDecoder
from tests.conftest import ROOT


def _feats(channels=(24, 32, 96, 320), size=32):
    sizes = (size, size // 2, size // 4, size // 4)
    return [torch.randn(2, c, s, s) for c, s in zip(channels, sizes)]


def _head(**kw):
    args = dict(
        type='SNLHead',
        in_channels=320,
        in_index=3,
        channels=32,
        num_samples=9,
        num_classes=5,
        norm_cfg=dict(type='BN'))
    args.update(kw)
    return MODELS.build(args)


@pytest.mark.parametrize('with_snl', [True, False])
@pytest.mark.parametrize('with_global_pool', [True, False])
def test_ablation_switches(with_snl, with_global_pool):
    head = _head(with_snl=with_snl, with_global_pool=with_global_pool)
    assert isinstance(head.snl, SparseNonLocal2d) == with_snl
    assert (head.global_pool is not None) == with_global_pool
    out = head(_feats())
    assert out.shape == (2, 5, 8, 8)  # stride 16, no decoder


def test_one_image_per_process_is_explained():
    one = [f[:1] for f in _feats()]
    head = _head().train()
    with pytest.raises(
            ValueError,
            match=r'1 image per process.*batch_size=2'
            r'.*SyncBN.*GN.*with_global_pool=False'):
        head(one)
    # what the message offers works: a per-image norm, or no pooling branch
    gn = dict(type='GN', num_groups=8, requires_grad=True)
    assert _head(norm_cfg=gn).train()(one).shape == (1, 5, 8, 8)
    assert _head(with_global_pool=False).train()(one).shape == (1, 5, 8, 8)
    assert _head().eval()(one).shape == (1, 5, 8, 8)  # inference: fine


def _decoder(**kw):
    return dict(
        type='SSANetDecoder',
        low_level_in_channels=24,
        low_level_channels=16,
        **kw)


def test_decoder_brings_stride_4():
    head = _head(decoder=_decoder())
    assert isinstance(head.decoder, SSANetDecoder)
    assert head.decoder.channels == 32 and len(head.decoder.fuse) == 2
    # the low-level 1x1 reduction: 24 -> 16 channels, the head's norm
    reduce = head.decoder.reduce
    assert (reduce.conv.in_channels, reduce.conv.out_channels) == (24, 16)
    assert isinstance(reduce.bn, torch.nn.BatchNorm2d)
    assert head(_feats()).shape == (2, 5, 32, 32)


def test_decoder_low_level_input_mismatch_is_named():
    head = _head(decoder=_decoder(low_level_index=1))
    with pytest.raises(
            ValueError,
            match=r'backbone output 1 '
            r'\(low_level_index\) with 24 channels '
            r'\(low_level_in_channels\), got 32'):
        head(_feats())
    head = _head(decoder=_decoder(low_level_index=4))
    with pytest.raises(
            ValueError,
            match='low_level_index 4 is out of '
            'range for 4 backbone outputs'):
        head(_feats())


def test_wrong_in_index_is_named():
    head = _head(in_index=2)
    with pytest.raises(ValueError, match=r'inputs\[2\] with 320 channels'):
        head(_feats())


def test_bad_head_config_is_refused():
    with pytest.raises(ValueError, match='num_samples=50'):
        _head(num_samples=50)
    with pytest.raises(ValueError, match='decoder.channels'):
        _head(decoder=_decoder(channels=64))
    with pytest.raises(ValueError, match='one feature map'):
        _head(
            in_channels=[96, 320],
            in_index=[2, 3],
            input_transform='multiple_select')


DEMO_CONFIG = 'configs/demo/ssanet_mobilenetv2_cpu_synthetic-cityscapes.py'


def _demo_model(**decode_head):
    """The demo config's model, its decode head updated by
    ``decode_head``, built with seed 0."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(osp.join(ROOT, DEMO_CONFIG))
    cfg.model.decode_head.update(decode_head)
    init_default_scope('mmseg')
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


def _one_step(model, x, backend):
    """A copy of ``model`` with its SNL block on ``backend``, after one
    forward and backward of ``x`` (the same dropout masks every time)."""
    import copy
    m = copy.deepcopy(model)
    m.decode_head.snl.backend = backend
    torch.manual_seed(1)
    m._forward(x).square().mean().backward()
    return m


def test_snl_options_in_a_config_reach_the_operator(monkeypatch):
    # kernel_size, snl_dilation, use_scale and snl_backend set where users
    # set them (the model config) reach the block, and the operator call:
    # the block's output is the operator's on its own 1x1 convs, scaled by
    # 1/sqrt(C') with use_scale (eq. 6 without it: the paper).
    from mmseg_ssanet.ops import sparse_nonlocal_attention
    snl = _demo_model(
        kernel_size=(3, 5), snl_dilation=2, use_scale=True,
        snl_backend='csr').decode_head.snl.eval()
    assert (snl.kernel_size, snl.dilation, snl.backend) == ((3, 5), (2, 2),
                                                            'csr')
    assert snl.scale == pytest.approx(snl.inter_channels**-0.5)
    for module in (snl.offset, snl.gamma):
        torch.nn.init.normal_(module.conv.weight, std=0.1)
    calls = []
    import mmseg_ssanet.models.blocks.snl_block as block

    def recorded(*args, **kwargs):
        calls.append((args[4:], kwargs))
        return sparse_nonlocal_attention(*args, **kwargs)

    monkeypatch.setattr(block, 'sparse_nonlocal_attention', recorded)
    x = torch.randn(2, snl.in_channels, 6, 7)
    with torch.no_grad():
        out = snl(x)
        y = sparse_nonlocal_attention(
            snl.theta(x),
            snl.phi(x),
            snl.g(x),
            snl.offset(x), (3, 5),
            2,
            scale=snl.inter_channels**-0.5,
            backend='reference')
        torch.testing.assert_close(out, x + snl.gamma(y), rtol=1e-5, atol=1e-5)
        unscaled = sparse_nonlocal_attention(
            snl.theta(x), snl.phi(x), snl.g(x), snl.offset(x), (3, 5), 2)
        assert not torch.allclose(x + snl.gamma(unscaled), out, atol=1e-4)
    (args, kwargs), = calls
    assert args == ((3, 5), (2, 2))
    assert kwargs == dict(scale=snl.scale, backend='csr')


def test_decoder_needs_a_fusing_conv():
    with pytest.raises(ValueError, match='num_convs must be >= 1, got 0'):
        _head(decoder=_decoder(num_convs=0))


def test_head_reads_from_the_paper_order():
    # reduce -> SNL -> [concat pooled reduced] -> bottleneck -> classifier
    head = _head().eval()
    x = _feats()
    reduced = head.reduce(x[3])
    out = head.snl(reduced)
    pooled = head.global_pool(reduced).expand_as(out)
    expected = head.cls_seg(head.bottleneck(torch.cat([out, pooled], 1)))
    torch.testing.assert_close(head(x), expected)
    assert isinstance(head, SNLHead)


@pytest.mark.parametrize('backend', ['cpp', 'csr'])
def test_demo_model_gradient_is_the_same_on_every_backend(backend):
    # The whole model's gradient, one step: the fast backends against the
    # reference (why the demo's mIoU differs between backends is chance,
    # not arithmetic: see README, Quick start).
    model = _demo_model().train()
    torch.nn.init.normal_(model.decode_head.snl.offset.conv.weight, std=0.05)
    x = torch.randn(2, 3, 128, 256)
    grads = {}
    for name in ('reference', backend):
        m = _one_step(model, x, name)
        grads[name] = torch.cat(
            [p.grad.flatten() for p in m.parameters() if p.grad is not None])
    ref = grads['reference']
    assert (grads[backend] - ref).norm() / ref.norm() < 1e-4


def _snl_grads(model):
    return {
        n: p.grad.clone()
        for n, p in model.decode_head.snl.named_parameters()
    }


@pytest.fixture(scope='module')
def float64_step():
    """The demo model in float64 with SNL weights drawn so that none of
    their gradients is zero (the block's zero init would make them all
    zero), an input, and the reference backend's gradient of each SNL
    parameter after one step: computed once for the backends below."""
    model = _demo_model().double().train()
    snl = model.decode_head.snl
    for module in (snl.theta, snl.phi, snl.g, snl.offset, snl.gamma):
        torch.nn.init.normal_(module.conv.weight, std=0.2)
    torch.nn.init.normal_(snl.offset.conv.bias, std=1.0)
    if snl.gamma.with_norm:
        torch.nn.init.ones_(snl.gamma.norm.weight)
    x = torch.randn(2, 3, 64, 128, dtype=torch.float64)
    return model, x, _snl_grads(_one_step(model, x, 'reference'))


@pytest.mark.parametrize('backend', ['cpp', 'csr', 'triton'])
def test_snl_parameters_get_the_reference_gradient(backend, float64_step):
    # Per parameter of the SNL block (query/key/value, offset and output
    # convs), one step of the demo model in float64: a wrong gradient in
    # one of them cannot hide under the backbone's, as in a whole-model
    # norm.
    model, x, want_grads = float64_step
    got_grads = _snl_grads(_one_step(model, x, backend))
    assert {n.split('.')[0]
            for n in want_grads} >= {'theta', 'phi', 'g', 'offset', 'gamma'}
    for name, want in want_grads.items():
        assert want.abs().max() > 0, name
        torch.testing.assert_close(
            got_grads[name],
            want,
            rtol=1e-8,
            atol=1e-10 * want.abs().max().item(),
            msg=lambda m: f'{name}: {m}')
