import os
import os.path as osp
import subprocess
import sys

import pytest

# The Triton kernel runs on CPU tensors through Triton's interpreter. It is
# read when the kernels are first compiled, so set it before any test runs;
# a machine with a GPU runs them on CUDA instead.
if not os.environ.get('CUDA_VISIBLE_DEVICES') and not osp.exists(
        '/dev/nvidia0'):
    os.environ.setdefault('TRITON_INTERPRET', '1')

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def mmseg_config_dir() -> str:
    """mmseg's own configs, as installed (what ``mmseg::`` resolves to)."""
    import mmseg
    return osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs')


@pytest.fixture(scope='session')
def cityscapes_root(tmp_path_factory):
    """A small generated dataset in Cityscapes' on-disk layout."""
    from mmseg_ssanet.datasets import generate
    root = str(tmp_path_factory.mktemp('data') / 'cityscapes')
    generate('cityscapes', root, num_train=8, num_val=4, num_test=2,
             height=64, width=128, seed=0)
    return root


def run_cli(args, cwd=ROOT, timeout=900):
    """Run a command line tool of the venv; return (returncode, output)."""
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    bin_dir = osp.dirname(sys.executable)
    env['PATH'] = bin_dir + os.pathsep + env.get('PATH', '')
    proc = subprocess.run(args, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)
    return proc.returncode, proc.stdout
