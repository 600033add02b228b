"""One test per compatibility shim (mmseg_ssanet/shims.py).

Each checks the upstream code the shim was written against (the wrapped
function's signature, the behaviour it works around) in a process without
the plugin. When one fails after an upgrade, upstream changed: adapt the
shim, or remove it if the behaviour is fixed.
"""
import inspect
import json
import os
import subprocess
import sys

import pytest
import torch

import mmseg_ssanet  # noqa: F401  (applies the shims)
from mmseg_ssanet.shims import SHIMS, apply_shims
from .conftest import run_cli, training_like_checkpoint


def _without_plugin(code):
    """Run ``code`` in a fresh interpreter that never imports the plugin;
    returns its last output line parsed as JSON."""
    guard = "import sys; sys.modules['mmseg_ssanet'] = None\n"
    code_, log = run_cli([sys.executable, '-c', guard + code], timeout=300)
    assert code_ == 0, log[-3000:]
    return json.loads(log.strip().splitlines()[-1])


def test_every_shim_says_what_and_against_which_release():
    assert [s.name for s in SHIMS
            ] == ['checkpoint_globals', 'dataset_layout', 'cpu_launcher']
    for shim in SHIMS:
        assert any(c.isdigit() for c in shim.upstream), shim.name
        assert len(shim.works_around) > 60, shim.name


def test_shims_apply_once():
    from mmengine.dist import utils
    from mmseg.datasets import BaseSegDataset
    before = (BaseSegDataset.load_data_list, utils._init_dist_pytorch)
    apply_shims()
    apply_shims()
    assert (BaseSegDataset.load_data_list, utils._init_dist_pytorch) == before
    # one wrapper, around upstream's own function
    assert not hasattr(BaseSegDataset.load_data_list.__wrapped__,
                       '__wrapped__')


def test_checkpoint_globals_upstream_still_loads_unsafely(tmp_path):
    # mmengine 0.10.7: torch.load without weights_only, so a torch that
    # loads weights-only by default (2.6 and later) refuses its own
    # checkpoints, and the shim applies there and nowhere else (torch 2.1
    # loads them). Fixed upstream: the load succeeds on every torch.
    from mmseg_ssanet.shims import CHECKPOINT_GLOBALS
    path = str(tmp_path / 'iter_5.pth')
    training_like_checkpoint(path)
    result = _without_plugin(f'''
import json, pickle
from mmengine.runner.checkpoint import _load_checkpoint
try:
    _load_checkpoint({path!r}, map_location='cpu')
    print(json.dumps('loaded'))
except pickle.UnpicklingError as err:
    print(json.dumps('refused: ' + str(err)[:200]))
''')
    if CHECKPOINT_GLOBALS.applies():
        assert result.startswith('refused: Weights only'), result
    else:
        assert result == 'loaded', result


def test_dataset_layout_upstream_error_names_no_folder(tmp_path):
    from mmseg.datasets import BaseSegDataset
    original = BaseSegDataset.load_data_list.__wrapped__
    assert list(inspect.signature(original).parameters) == ['self']
    for folder in ('leftImg8bit/train', 'gtFine/train'):
        (tmp_path / folder).mkdir(parents=True)
    # mmseg 1.2.2 on a folder with no images: a numpy error that names
    # neither the folder nor the layout. Fixed upstream: the message says.
    result = _without_plugin(f'''
import json
from mmseg.datasets import CityscapesDataset
try:
    ds = CityscapesDataset(data_root={str(tmp_path)!r}, data_prefix=dict(
        img_path='leftImg8bit/train', seg_map_path='gtFine/train'))
    print(json.dumps(f'{{len(ds)}} images'))
except Exception as err:
    print(json.dumps(f'{{type(err).__name__}}: {{err}}'))
''')
    assert result == ('ValueError: need at least one array to '
                      'concatenate'), result


def test_cpu_launcher_upstream_still_needs_cuda():
    from mmengine.dist import utils
    original = utils._init_dist_pytorch.__wrapped__
    params = inspect.signature(original).parameters
    assert list(params) == ['backend', 'init_backend', 'kwargs']
    assert params['init_backend'].default == 'torch'
    # the call that fails without CUDA
    assert 'torch.cuda.set_device' in inspect.getsource(original)


def test_cpu_launcher_is_not_applied_where_cuda_is():
    result = _without_plugin('''
import json, sys, torch
torch.cuda.is_available = lambda: True   # as on a GPU machine
del sys.modules['mmseg_ssanet']
import mmseg_ssanet
from mmengine.dist import utils
print(json.dumps(hasattr(utils._init_dist_pytorch, '_ssanet_shim')))
''')
    assert result is False


LAUNCH_ONE_RANK = '''
import atexit, json, os, sys
import torch.distributed as dist
# runs after the handlers registered later (atexit is last in, first out)
atexit.register(lambda: print(json.dumps(dist.is_initialized())))
os.environ.update(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1',
                  MASTER_ADDR='127.0.0.1', MASTER_PORT=sys.argv[1])
import mmseg_ssanet  # noqa: F401  (the cpu_launcher shim)
from mmengine.dist import init_dist
init_dist('pytorch')
dist.barrier()
'''


@pytest.mark.skipif(
    torch.cuda.is_available(),
    reason='the cpu_launcher shim applies without CUDA')
def test_cpu_launcher_leaves_no_process_group_alive_at_exit():
    # alive at exit, a gloo group's destructor can abort its process
    # (SIGABRT after a finished run: 4 of 20 minimal two-process runs)
    proc = subprocess.run([
        sys.executable, '-c', LAUNCH_ONE_RANK,
        str(29000 + os.getpid() % 1000)
    ],
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == 'false', proc.stdout


def test_shims_apply_where_their_problem_exists():
    # checkpoint_globals: test_checkpoint_globals_upstream_still_loads_unsafely
    import torch
    from mmengine.dist import utils
    from mmseg.datasets import BaseSegDataset
    shims = {s.name: s for s in SHIMS}
    assert shims['dataset_layout'].applies()
    assert hasattr(BaseSegDataset.load_data_list, '_ssanet_shim')
    without_cuda = not torch.cuda.is_available()
    assert shims['cpu_launcher'].applies() == without_cuda
    assert hasattr(utils._init_dist_pytorch, '_ssanet_shim') == without_cuda
