"""A user's first day, as docs/training.md says it: a config of their own
outside the checkout, and a short CPU run of a real config."""
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

from .conftest import ROOT, run_cli

pytestmark = pytest.mark.slow


def documented_user_config():
    """The ```python block of docs/training.md's "A config of your own"."""
    with open(osp.join(ROOT, 'docs', 'training.md')) as f:
        text = f.read()
    section = text[text.index('### A config of your own'):]
    return re.search(r'```python\n(.*?)```', section, re.S).group(1)


def test_user_config_outside_the_repo_trains_and_resumes(
        tmp_path, cityscapes_root):
    config = documented_user_config()
    assert "/path/to/mmseg_ssanet/configs/" in config
    config = config.replace('/path/to/mmseg_ssanet',
                            ROOT).replace("'/data/cityscapes/'",
                                          repr(cityscapes_root))
    user = tmp_path / 'user'  # not the checkout, not under it
    user.mkdir()
    (user / 'my_ssanet_config.py').write_text(config)
    work = str(user / 'work')
    short = [
        'model.pretrained=None', 'train_cfg.max_iters=2',
        'train_cfg.val_interval=1000', 'param_scheduler.0.end=2',
        'default_hooks.checkpoint.interval=1', 'train_dataloader.batch_size=2',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False', 'val_dataloader=None',
        'val_cfg=None', 'val_evaluator=None'
    ]
    code, out = run_cli([
        'mim', 'train', 'mmseg', 'my_ssanet_config.py', '--gpus', '0',
        '--work-dir', work, '--cfg-options', *short
    ],
                        cwd=str(user))
    assert code == 0, out[-4000:]
    dumped = (user / 'work' / 'my_ssanet_config.py').read_text()
    # the crop reached every place it must, K the head
    assert dumped.count('crop_size=(\n        512,\n        1024,\n    )') \
        + dumped.count('crop_size=(512, 1024)') >= 2, dumped
    assert re.search(r'size=\(\s*512,\s*1024,?\s*\)', dumped)
    ckpt = torch.load(
        osp.join(work, 'iter_2.pth'), map_location='cpu', weights_only=False)
    offset = ckpt['state_dict']['decode_head.snl.offset.conv.weight']
    assert offset.shape[0] == 2 * 49
    # one more iteration, resumed
    code, out = run_cli([
        'mim', 'train', 'mmseg', 'my_ssanet_config.py', '--gpus', '0',
        '--work-dir', work, '--resume', '--cfg-options', *short,
        'train_cfg.max_iters=3', 'param_scheduler.0.end=3'
    ],
                        cwd=str(user))
    assert code == 0, out[-4000:]
    assert 'resumed epoch: 0, iter: 2' in out
    assert osp.isfile(osp.join(work, 'iter_3.pth'))


def test_short_run_options_as_documented(tmp_path, cityscapes_root):
    config = 'configs/ssanet_r101_cityscapes.py'
    proc = subprocess.run([
        sys.executable, 'tools/misc/short_run_options.py', config,
        cityscapes_root, '--size', '64x128', '--iters', '2', '--no-val'
    ],
                          cwd=ROOT,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    options = proc.stdout.split()  # as $(...) splits them
    assert 'model.pretrained=None' in options
    assert 'model.data_preprocessor.size=(64,128)' in options
    assert 'val_cfg=None' in options
    work = str(tmp_path / 'work')
    code, out = run_cli([
        'mim', 'train', 'mmseg', config, '--gpus', '0', '--work-dir', work,
        '--cfg-options', *options
    ])
    assert code == 0, out[-4000:]
    assert osp.isfile(osp.join(work, 'iter_2.pth'))
    assert 'Iter(val)' not in out  # --no-val: no validation at the end
