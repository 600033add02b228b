"""Every config in configs/ builds, trains a step and infers on CPU.

One parametrized test over the folder: a new config is covered as soon as it
is added. Inputs are small; pretrained weights are not fetched (no network);
SyncBN is reverted to BN, as mmengine does for a single-process run.
"""
import ast
import glob
import json
import os.path as osp
from collections import Counter

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmseg_ssanet  # noqa: F401
from mmseg_ssanet.models import SparseNonLocal2d
from .conftest import ROOT

CONFIGS = sorted(
    osp.relpath(p, ROOT) for p in glob.glob(
        osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p)


def small_model(config_path, size=64):
    cfg = Config.fromfile(osp.join(ROOT, config_path))
    model_cfg = cfg.model
    model_cfg.pretrained = None
    model_cfg.data_preprocessor.size = (size, size)
    if model_cfg.test_cfg.get('mode') == 'slide':
        model_cfg.test_cfg.crop_size = (size * 3 // 4, size * 3 // 4)
        model_cfg.test_cfg.stride = (size // 2, size // 2)
    init_default_scope('mmseg')
    return cfg, revert_sync_batchnorm(MODELS.build(model_cfg))


def batch(num_classes, size=64, n=2):
    g = torch.Generator().manual_seed(0)
    inputs = [
        torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8)
        for _ in range(n)
    ]
    samples = []
    for _ in range(n):
        sample = SegDataSample()
        label = torch.randint(0, num_classes, (1, size, size), generator=g)
        sample.gt_sem_seg = PixelData(data=label)
        sample.set_metainfo(
            dict(
                img_shape=(size, size),
                ori_shape=(size, size),
                pad_shape=(size, size)))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def test_configs_found():
    assert 'configs/ssanet_r101_cityscapes.py' in CONFIGS
    assert len(CONFIGS) >= 15


@pytest.mark.parametrize('config_path', CONFIGS)
def test_config_trains_a_step_and_infers(config_path):
    torch.manual_seed(0)
    cfg, model = small_model(config_path)
    assert cfg.custom_imports.imports == ['mmseg_ssanet']
    num_classes = model.decode_head.num_classes
    data = batch(num_classes)

    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    losses = model(**model.data_preprocessor(data, True), mode='loss')
    loss, _ = model.parse_losses(losses)
    assert torch.isfinite(loss), (config_path, losses)
    loss.backward()
    snl_blocks = [
        m for m in model.modules() if isinstance(m, SparseNonLocal2d)
    ]
    if cfg.model.decode_head.type == 'SNLHead' and \
            cfg.model.decode_head.get('with_snl', True):
        assert len(snl_blocks) == 1
        offset_grad = snl_blocks[0].offset.conv.weight.grad
        assert offset_grad is not None and offset_grad.abs().sum() > 0
        assert snl_blocks[0].num_samples == cfg.model.decode_head.num_samples
    else:
        assert not snl_blocks
    optimizer.step()

    model.eval()
    with torch.no_grad():
        preds = model.test_step(data)
    assert len(preds) == 2
    seg = preds[0].pred_sem_seg.data
    assert seg.shape == (1, 64, 64)
    assert 0 <= int(seg.min()) and int(seg.max()) < num_classes


# What each config builds (parameter count and leaf modules), recorded so
# that reorganising the configs cannot change a model unnoticed. A config
# whose model changes on purpose updates its entry.
BUILT_BEFORE = osp.join(ROOT, 'tests', 'data', 'config_models.json')


def _fingerprint(model):
    leaves = Counter(
        type(m).__name__ for m in model.modules() if not list(m.children()))
    return dict(
        parameters=sum(p.numel() for p in model.parameters()),
        leaf_modules=dict(sorted(leaves.items())))


@pytest.mark.parametrize('config_path', CONFIGS)
def test_config_builds_the_same_model_as_before(config_path):
    with open(BUILT_BEFORE) as f:
        before = json.load(f)
    assert config_path in before, f'{config_path}: add it to {BUILT_BEFORE}'
    cfg = Config.fromfile(osp.join(ROOT, config_path))
    cfg.model.pretrained = None
    init_default_scope('mmseg')
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    assert _fingerprint(model) == before[config_path]


def _local_bases(path):
    """The config files ``path`` inherits from this repository (mmseg::
    bases are the ground: they are not followed)."""
    tree = ast.parse(open(path).read())
    bases = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                getattr(t, 'id', None) == '_base_' for t in node.targets):
            value = ast.literal_eval(node.value)
            bases = [value] if isinstance(value, str) else list(value)
    return [
        osp.normpath(osp.join(osp.dirname(path), b)) for b in bases
        if '::' not in b
    ]


def _levels(path):
    """How many configs stand between ``path`` and mmseg's bases,
    ``path`` included: 1 for a config that inherits mmseg:: bases and
    fragments (files that inherit nothing) only."""
    bases = _local_bases(path)
    if not bases:
        return 0
    return 1 + max(_levels(b) for b in bases)


@pytest.mark.parametrize('config_path', CONFIGS)
def test_config_is_at_most_three_levels_below_mmseg_bases(config_path):
    assert _levels(osp.join(ROOT, config_path)) <= 3


def test_low_level_input_is_stated_once():
    text = open(
        osp.join(ROOT, 'configs', '_base_', 'models',
                 'ssanet_r101-d16.py')).read()
    assert text.count('low_level_channels') == 1
    assert text.count('low_level_index') == 1
    assert 'neck' not in text
