"""Published checkpoints load with torch's safe loader, plugin or not."""
import re
import subprocess
import sys

import numpy as np
import torch

from mmseg_ssanet.features import load_trusted
from mmseg_ssanet.utils.checkpoint_allowlist import mmengine_checkpoint_globals
from .conftest import run_cli, training_like_checkpoint

PLAIN_LOAD = r'''
import sys, torch
ckpt = torch.load(sys.argv[1], weights_only=True)
assert not [m for m in sys.modules if m.startswith('mmseg_ssanet')]
print('KEYS', sorted(ckpt), sorted(ckpt['meta']))
print('CLASSES', ckpt['meta']['dataset_meta']['classes'])
print('SEED', type(ckpt['meta']['seed']).__name__)
'''


def test_published_checkpoint_loads_without_the_plugin(tmp_path):
    src = str(tmp_path / 'iter_5.pth')
    model = training_like_checkpoint(src)
    # give meta what Runner sometimes puts there: numpy scalars and arrays
    ckpt = load_trusted(src, mmengine_checkpoint_globals())
    ckpt['meta'].update(seed=np.int64(7), mean=np.array([1.5, 2.5]))
    torch.save(ckpt, src)

    code, log = run_cli([
        'python', 'tools/misc/publish_model.py', src,
        str(tmp_path / 'ssanet.pth')
    ])
    assert code == 0, log[-2000:]
    (final, ) = re.findall(r'published (\S+ssanet-[0-9a-f]{8}\.pth)', log)
    from mmseg_ssanet.utils.publish import sha256_of
    assert final.endswith(f'-{sha256_of(final)[:8]}.pth')

    proc = subprocess.run([sys.executable, '-c', PLAIN_LOAD, final],
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert "KEYS ['meta', 'state_dict'] ['dataset_meta', 'iter', 'mean', " \
           "'seed']" in proc.stdout  # no optimizer, schedulers, message hub
    assert "CLASSES ('a', 'b')" in proc.stdout
    assert 'SEED int' in proc.stdout
    weights = torch.load(final, weights_only=True)['state_dict']
    torch.testing.assert_close(weights['weight'], model.weight)


def test_publish_names_a_missing_file(tmp_path):
    code, log = run_cli([
        'python', 'tools/misc/publish_model.py',
        str(tmp_path / 'nope.pth'),
        str(tmp_path / 'x.pth')
    ])
    assert code != 0 and 'does not exist' in log
