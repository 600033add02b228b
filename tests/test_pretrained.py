"""The configs' pretrained references load through mmengine's own path.

No network here: the test writes a checkpoint where mmengine's loader
caches the download (``<TORCH_HOME>/hub/checkpoints/<file of the URL>``), in
the layout of the real file, then builds the model from the config and runs
its ``init_weights`` — the path ``mim train`` takes.
"""
import os
import os.path as osp
import subprocess
import sys

import pytest

from .conftest import ROOT

SCRIPT = r'''
import os, sys, torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import get_external_models, get_mmcls_models
from mmseg.registry import MODELS
import mmseg_ssanet  # noqa

config, torch_home = sys.argv[1], sys.argv[2]
cfg = Config.fromfile(config)
ref = cfg.model.pretrained
scheme, name = ref.split('://')
url = (get_external_models() if scheme == 'open-mmlab'
       else get_mmcls_models())[name]
init_default_scope('mmseg')
model = revert_sync_batchnorm(MODELS.build(cfg.model))
# A "pretrained" backbone: every float tensor filled with a known value.
source = revert_sync_batchnorm(MODELS.build(cfg.model.backbone))
state = {k: torch.full_like(v, 0.125) if v.is_floating_point() else v
         for k, v in source.state_dict().items()}
if scheme == 'mmcls':  # an mmcls classifier checkpoint: backbone.*, head.*
    state = {**{'backbone.' + k: v for k, v in state.items()},
             'head.fc.weight': torch.zeros(1000, 1280)}
ckpt_dir = os.path.join(torch_home, 'hub', 'checkpoints')
os.makedirs(ckpt_dir)
torch.save({'state_dict': state}, os.path.join(ckpt_dir, url.split('/')[-1]))
model.init_weights()
loaded = model.backbone.state_dict()
bad = [k for k, v in loaded.items()
       if v.is_floating_point() and not torch.all(v == 0.125)]
assert not bad, bad[:5]
assert not torch.all(model.decode_head.conv_seg.weight == 0.125)
print('LOADED', ref, len(loaded))
'''


@pytest.mark.parametrize('config', [
    'configs/ssanet_r101_cityscapes.py',
    'configs/ssanet_mobilenetv2_cityscapes.py'
])
def test_pretrained_backbone_loads_through_init_cfg(tmp_path, config):
    env = dict(os.environ, TORCH_HOME=str(tmp_path / 'torch_home'))
    proc = subprocess.run([
        sys.executable, '-c', SCRIPT,
        osp.join(ROOT, config), env['TORCH_HOME']
    ],
                          capture_output=True,
                          text=True,
                          env=env,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert 'LOADED' in proc.stdout
