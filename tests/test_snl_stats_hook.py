"""SNLStatsHook: the SNL blocks' statistics, in a real mim training run."""
import glob
import json
import math

import pytest
import torch

import mmseg_ssanet  # noqa: F401
from mmseg_ssanet.engine import SNLStatsHook, snl_statistics
from mmseg_ssanet.models import SparseNonLocal2d
from .conftest import DEMO_CONFIG, data_options, run_cli


def _outside_on_the_grid(H, W, kh, kw, d):
    """Share of the regular grid's points outside an H x W map."""
    out = 0
    for y in range(H):
        for x in range(W):
            for i in range(kh):
                for j in range(kw):
                    ty = y + (i - (kh - 1) // 2) * d
                    tx = x + (j - (kw - 1) // 2) * d
                    out += not (0 <= ty <= H - 1 and 0 <= tx <= W - 1)
    return out / (H * W * kh * kw)


def test_fresh_block_sits_on_the_grid_with_uniform_attention():
    torch.manual_seed(0)
    block = SparseNonLocal2d(16, num_samples=49, dilation=2)
    stats = snl_statistics(block, torch.randn(2, 16, 9, 11))
    assert stats['offset_mean'] == 0 and stats['offset_max'] == 0
    # theta and phi start at std 0.01: logits ~0, weights ~1/K
    assert stats['entropy'] == pytest.approx(1.0, abs=1e-4)
    assert stats['outside'] == pytest.approx(
        _outside_on_the_grid(9, 11, 7, 7, 2))


def test_offsets_and_concentrated_attention_are_measured():
    torch.manual_seed(0)
    block = SparseNonLocal2d(8, num_samples=9)
    torch.nn.init.constant_(block.offset.conv.bias, 100.0)  # all far out
    torch.nn.init.normal_(block.theta.conv.weight, std=3.0)
    torch.nn.init.normal_(block.phi.conv.weight, std=3.0)
    stats = snl_statistics(block, torch.randn(1, 8, 6, 7))
    assert stats['offset_mean'] == pytest.approx(100 * math.sqrt(2))
    assert stats['outside'] == 1.0
    # every point outside reads zero keys: logits 0, uniform again
    assert stats['entropy'] == pytest.approx(1.0, abs=1e-6)
    torch.nn.init.constant_(block.offset.conv.bias, 0.3)
    stats = snl_statistics(block, torch.randn(1, 8, 6, 7))
    assert stats['entropy'] < 0.9  # large logits: peaked attention


def test_ssanet_configs_carry_the_hook_and_snl_free_ones_do_not():
    from mmengine.config import Config
    hooks = Config.fromfile(DEMO_CONFIG).custom_hooks
    assert [h['type'] for h in hooks] == ['SNLStatsHook']
    for path in ('configs/ablation/mobilenetv2_fcn-baseline_cityscapes.py',
                 'configs/comparison/mobilenetv2_nl_cityscapes.py'):
        assert Config.fromfile(path).custom_hooks == []


def test_bad_interval_is_refused():
    with pytest.raises(ValueError, match='interval must be a positive int'):
        SNLStatsHook(interval=0)


@pytest.mark.slow
def test_hook_logs_through_mim_train(tmp_path, cityscapes_root):
    work = tmp_path / 'work'
    code, out = run_cli([
        'mim',
        'train',
        'mmseg',
        DEMO_CONFIG,
        '--gpus',
        '0',
        '--work-dir',
        str(work),
        '--cfg-options',
        *data_options(cityscapes_root),
        'train_dataloader.batch_size=2',
        'train_cfg.max_iters=4',
        'train_cfg.val_interval=100',
        'default_hooks.logger.interval=2',
        # the SSANet configs carry the hook (configs/_base_/snl_stats.py)
        'custom_hooks.0.interval=2'
    ])
    assert code == 0, out[-3000:]
    assert 'snl/decode_head.snl/entropy' in out  # in the text log
    (scalars, ) = glob.glob(str(work / '*' / 'vis_data' / 'scalars.json'))
    records = [json.loads(line) for line in open(scalars)]
    logged = [r for r in records if 'snl/decode_head.snl/entropy' in r]
    assert [r['step'] for r in logged] == [2, 4]  # (and a val record)
    for record in logged:  # what every visualisation backend receives
        assert 0 <= record['snl/decode_head.snl/offset_mean'] <= \
            record['snl/decode_head.snl/offset_max']
        assert 0 < record['snl/decode_head.snl/entropy'] <= 1
        assert 0 <= record['snl/decode_head.snl/outside'] <= 1
