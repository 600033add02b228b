"""Train, resume and test through the real ``mim`` CLI on generated data."""
import os.path as osp
import re

import pytest

from .conftest import DEMO_CONFIG, data_options, read_miou, run_cli


@pytest.mark.slow
def test_mim_train_resume_test(tmp_path, cityscapes_root):
    work = str(tmp_path / 'work')
    common = ['--gpus', '0', '--work-dir', work]
    opts = data_options(cityscapes_root) + [
        'train_dataloader.batch_size=2', 'default_hooks.checkpoint.interval=3',
        'default_hooks.logger.interval=1', 'train_cfg.val_interval=100'
    ]

    code, out = run_cli([
        'mim', 'train', 'mmseg', DEMO_CONFIG, *common, '--cfg-options', *opts,
        'train_cfg.max_iters=3'
    ])
    assert code == 0, out[-3000:]
    assert osp.isfile(osp.join(work, 'iter_3.pth'))

    code, out = run_cli([
        'mim', 'train', 'mmseg', DEMO_CONFIG, *common, '--resume',
        '--cfg-options', *opts, 'train_cfg.max_iters=6'
    ])
    assert code == 0, out[-3000:]
    assert 'resumed epoch: 0, iter: 3' in out
    assert 'Iter(train) [6/6]' in out
    assert osp.isfile(osp.join(work, 'iter_6.pth'))

    code, out = run_cli([
        'mim', 'test', 'mmseg', DEMO_CONFIG, *common, '--checkpoint',
        osp.join(work, 'iter_6.pth'), '--cfg-options',
        *data_options(cityscapes_root)
    ])
    assert code == 0, out[-3000:]
    assert 'Weights only load failed' not in out
    assert 0.0 <= read_miou(out) <= 100.0  # 6 iterations: any score
    assert re.search(r'\|\s+road\s+\|', out)  # the per-class table


@pytest.mark.slow
def test_mim_training_learns_the_generated_scenes(tmp_path, cityscapes_root):
    """More than "an mIoU was printed": a short run of the demo model lowers
    its loss and labels the generated scenes far above chance (the largest
    class covers under a quarter of the pixels)."""
    work = str(tmp_path / 'work')
    common = ['--gpus', '0', '--work-dir', work]
    iters = 60
    code, out = run_cli([
        'mim', 'train', 'mmseg', DEMO_CONFIG, *common, '--cfg-options',
        *data_options(cityscapes_root), f'train_cfg.max_iters={iters}',
        f'train_cfg.val_interval={iters}', f'param_scheduler.0.end={iters}',
        f'default_hooks.checkpoint.interval={iters}',
        'default_hooks.logger.interval=10'
    ])
    assert code == 0, out[-3000:]
    losses = [
        float(v) for v in re.findall(r'Iter\(train\).*?\bloss: ([0-9.]+)', out)
    ]
    assert len(losses) >= iters // 10, out[-3000:]
    assert losses[-1] < 0.5 * losses[0], losses

    code, out = run_cli([
        'mim', 'test', 'mmseg', DEMO_CONFIG, *common, '--checkpoint',
        osp.join(work, f'iter_{iters}.pth'), '--cfg-options',
        *data_options(cityscapes_root)
    ])
    assert code == 0, out[-3000:]
    pixel_accuracy = float(re.findall(r'aAcc: ([0-9.]+)', out)[-1])
    assert pixel_accuracy > 75, out[-3000:]
    assert read_miou(out) > 40, out[-3000:]


@pytest.mark.slow
def test_mim_train_with_missing_data_names_it(tmp_path):
    missing = str(tmp_path / 'no_such_dataset')
    code, out = run_cli([
        'mim', 'train', 'mmseg', DEMO_CONFIG, '--gpus', '0', '--work-dir',
        str(tmp_path / 'w'), '--cfg-options', *data_options(missing)
    ])
    assert code != 0
    assert f"data_root '{missing}' does not exist" in out
    assert 'tools/misc/generate_data.py' in out
