"""Attention on the own cue, measured for a dense non-local model (NLHead)."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch

from mmseg_ssanet.apis import load_segmentor
from projects.cue_scenes.cue_attention import (cue_attention_over,
                                               dense_attention_on_cues,
                                               read_cue_scene,
                                               recorded_dense_attention)
from projects.cue_scenes.paired_cues import generate_cue_scenes
from tests.conftest import ROOT

NL = osp.join(ROOT, 'configs', 'comparison', 'mobilenetv2_nl_cityscapes.py')
BASELINE = osp.join(ROOT, 'configs', 'ablation',
                    'mobilenetv2_fcn-baseline_cityscapes.py')
SNL = osp.join(ROOT, 'configs', 'ablation', 'mobilenetv2_snl-k9_cityscapes.py')
SIZE = (128, 256)


def _model(config, **options):
    return load_segmentor(
        config,
        cfg_options={
            'model.pretrained': None,
            'model.backbone.init_cfg': None,
            'model.test_cfg.mode': 'whole',
            'test_pipeline.1.scale': SIZE[::-1],
            **options
        })


@pytest.fixture(scope='module')
def cue_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('cues') / 'cityscapes')
    generate_cue_scenes('cityscapes', root, 1, 2, *SIZE, seed=3)
    return root


def _first_scene(root):
    label = sorted(
        glob.glob(osp.join(root, 'gtFine', 'val', '*',
                           '*_labelTrainIds.png')))[0]
    image = label.replace(
        osp.join('gtFine', 'val'),
        osp.join('leftImg8bit', 'val')).replace('_gtFine_labelTrainIds',
                                                '_leftImg8bit')
    return read_cue_scene(image, label)


def test_uniform_dense_attention_scores_the_cues_share_of_the_map(cue_root):
    model = _model(NL)
    block = model.decode_head.nl_block
    with torch.no_grad():  # equal logits everywhere: uniform attention
        block.theta.conv.weight.zero_()
        block.phi.conv.weight.zero_()
    image, pairs = _first_scene(cue_root)
    scores = dense_attention_on_cues(model, image, pairs)
    assert len(scores) == len(pairs) >= 2
    feat_h, feat_w = SIZE[0] // 16, SIZE[1] // 16
    for s in scores:
        # feature pixels whose centre is within 8 px of the 24 px cue
        y0, x0 = s['pair'].cue
        centres_y = np.arange(feat_h) * 16 + 7.5
        centres_x = np.arange(feat_w) * 16 + 7.5
        cells = (((centres_y >= y0 - 8) & (centres_y < y0 + 32)).sum() *
                 ((centres_x >= x0 - 8) & (centres_x < x0 + 32)).sum())
        assert 1 <= cells <= 9
        assert s['initial'] == pytest.approx(cells / (feat_h * feat_w))
        assert s['learned'] == pytest.approx(s['initial'], rel=1e-4)


def test_recorded_maps_are_the_blocks_softmax_and_the_block_is_restored(
        cue_root):
    model = _model(NL)
    block = model.decode_head.nl_block
    x = torch.randn(1, block.in_channels, 8, 16)
    with recorded_dense_attention(block) as maps, torch.no_grad():
        block(x)
    assert len(maps) == 1 and maps[0].shape == (1, 128, 128)
    assert torch.allclose(maps[0].sum(-1), torch.ones(1, 128))
    assert 'embedded_gaussian' not in vars(block)  # the method is back
    with torch.no_grad():
        logits = (block.theta(x).flatten(2).transpose(1, 2)
                  @ block.phi(x).flatten(2)) / block.inter_channels**0.5
    assert torch.allclose(maps[0], logits.softmax(-1), atol=1e-6)


def test_the_dataset_mean_dispatches_on_the_block(cue_root):
    result = cue_attention_over(_model(NL), cue_root)
    assert result['num_pairs'] >= 4
    assert 0 < result['initial'] < 0.1 and 0 <= result['learned'] <= 1
    for key in ('similarity_own', 'similarity_other'):
        assert -1 <= result[key] <= 1
    with pytest.raises(ValueError, match='neither a SparseNonLocal2d nor'):
        cue_attention_over(_model(BASELINE), cue_root)
    image, pairs = _first_scene(cue_root)
    with pytest.raises(ValueError, match='not a dense NonLocal2d'):
        dense_attention_on_cues(_model(SNL), image, pairs)
    with pytest.raises(ValueError, match='whole-image inference'):
        dense_attention_on_cues(
            _model(
                NL, **{
                    'model.test_cfg.mode': 'slide',
                    'model.test_cfg.crop_size': (64, 64),
                    'model.test_cfg.stride': (32, 32)
                }), image, pairs)


def test_feature_similarity_tells_the_own_cue_when_features_carry_it():
    from projects.cue_scenes.cue_attention import feature_similarity
    from projects.cue_scenes.paired_cues import CuePair

    # two pairs in a 128x256 image; feature map 8x16 at stride 16
    pairs = [
        CuePair((0, 0), (80, 4), 'car', 90.),
        CuePair((0, 200), (80, 204), 'person', 90.)
    ]
    features = np.zeros((4, 8, 16), np.float32)
    features[:, :, :] = np.array([0, 0, 0, 1.])[:, None, None]
    features[:, 1, 1] = features[:, 5, 1] = [1, 0, 0, 1]  # pair 0's colour
    features[:, 1, 13] = features[:, 5, 13] = [0, 1, 0, 1]  # pair 1's
    own, other = zip(*feature_similarity(features, pairs, (128, 256)))
    assert own == pytest.approx((1., 1.))
    assert other == pytest.approx((0.5, 0.5))  # shared 4th channel only
    features[:, 5, 13] = [1, 0, 0, 1]  # both cues look like pair 0's
    own, other = zip(*feature_similarity(features, pairs, (128, 256)))
    assert own[1] == pytest.approx(0.5) and other[1] == pytest.approx(0.5)


def test_weight_inside_counts_the_attention_mass_in_a_box():
    from mmseg_ssanet.apis.sampling import QuerySamples
    from projects.cue_scenes.cue_attention import weight_inside
    sample = QuerySamples(
        query=(10, 10),
        feature_pixel=(1, 1),
        stride=(8., 8.),
        points=np.array([[0., 0.], [10., 10.], [11., 30.]]),
        initial=np.array([[0., 0.], [9., 9.], [20., 20.]]),
        weights=np.array([1., 3., 4.]))
    assert weight_inside(sample, (8, 8, 4, 4)) == (0.375, pytest.approx(1 / 3))
    # a margin grows the box on every side
    assert weight_inside(sample, (8, 8, 4, 4), margin=8)[0] == 0.5
    assert weight_inside(sample, (8, 8, 4, 4), margin=19)[0] == 1.0
