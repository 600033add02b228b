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
        'train_dataloader.batch_size=2',
        'default_hooks.checkpoint.interval=3',
        'default_hooks.logger.interval=1',
        'train_cfg.val_interval=100']

    code, out = run_cli(['mim', 'train', 'mmseg', DEMO_CONFIG, *common,
                         '--cfg-options', *opts, 'train_cfg.max_iters=3'])
    assert code == 0, out[-3000:]
    assert osp.isfile(osp.join(work, 'iter_3.pth'))

    code, out = run_cli(['mim', 'train', 'mmseg', DEMO_CONFIG, *common,
                         '--resume', '--cfg-options', *opts,
                         'train_cfg.max_iters=6'])
    assert code == 0, out[-3000:]
    assert 'resumed epoch: 0, iter: 3' in out
    assert 'Iter(train) [6/6]' in out
    assert osp.isfile(osp.join(work, 'iter_6.pth'))

    code, out = run_cli(['mim', 'test', 'mmseg', DEMO_CONFIG, *common,
                         '--checkpoint', osp.join(work, 'iter_6.pth'),
                         '--cfg-options', *data_options(cityscapes_root)])
    assert code == 0, out[-3000:]
    assert 'Weights only load failed' not in out
    miou = read_miou(out)
    assert 0.0 <= miou <= 100.0
    assert re.search(r'\|\s+road\s+\|', out)  # the per-class table


@pytest.mark.slow
def test_mim_train_with_missing_data_names_it(tmp_path):
    missing = str(tmp_path / 'no_such_dataset')
    code, out = run_cli(['mim', 'train', 'mmseg', DEMO_CONFIG, '--gpus', '0',
                         '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                         *data_options(missing)])
    assert code != 0
    assert f"data_root '{missing}' does not exist" in out
    assert 'tools/generate_data.py' in out
