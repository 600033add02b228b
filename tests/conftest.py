import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

# Triton's interpreter is one setting for the whole process, read when the
# kernels are first compiled: chosen here, once, from the machine. Without
# a GPU the Triton kernel runs on CPU tensors through the interpreter; with
# one it runs on CUDA tensors (tests.ops_cases.TRITON_DEVICE).
if not torch.cuda.is_available():
    os.environ.setdefault('TRITON_INTERPRET', '1')

# torch.compile's on-disk cache keeps compiled graphs that call the custom
# ops by their schema at the time; one that changed since then would be
# called wrongly, so each run of the suite compiles into its own cache.
if 'TORCHINDUCTOR_CACHE_DIR' not in os.environ:
    import atexit
    import shutil
    import tempfile
    os.environ['TORCHINDUCTOR_CACHE_DIR'] = tempfile.mkdtemp(
        prefix='ssanet-inductor-')
    atexit.register(shutil.rmtree, os.environ['TORCHINDUCTOR_CACHE_DIR'], True)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def triton_cannot_run_here(device_type='cpu'):
    """Why the installed triton cannot run the SNL kernels on CPU tensors
    (it lacks the interpreter: triton 2.1, the one torch 2.1 brings), or
    compile them for CUDA (``device_type='cuda'``), or None. None too
    where triton is not installed: the stacks this suite runs on have it,
    and its absence fails them."""
    import importlib.util
    if importlib.util.find_spec('triton') is None:
        return None
    from mmseg_ssanet.features import triton_missing
    return triton_missing(device_type)


def pytest_collection_modifyitems(items):
    """Tests parametrized ``backend='triton'`` get the ``triton`` mark
    too, so that ``-m triton`` / ``-m 'not triton'`` select them all (make
    test-quick leaves them out: the interpreter is slow)."""
    for item in items:
        callspec = getattr(item, 'callspec', None)
        if callspec is not None and callspec.params.get('backend') == \
                'triton':
            item.add_marker(pytest.mark.triton)


@pytest.fixture(autouse=True)
def _triton_kernels_run_here(request):
    """Tests of the triton backend (parametrized ``backend='triton'``, or
    marked ``triton``) are skipped, with the reason, where the installed
    triton cannot run its kernels: there the backend refuses and the
    default falls back (tests/test_backend_triton.py checks that)."""
    callspec = getattr(request.node, 'callspec', None)
    uses = callspec is not None and callspec.params.get('backend') == \
        'triton'
    marker = request.node.get_closest_marker('triton')
    if uses or marker:
        # triton(compiles_for='cuda'): compiled ahead of time for a GPU,
        # which needs no interpreter
        reason = triton_cannot_run_here(
            marker.kwargs.get('compiles_for', 'cpu') if marker else 'cpu')
        if reason:
            pytest.skip(reason)


def mmseg_config_dir() -> str:
    """mmseg's own configs, as installed (what ``mmseg::`` resolves to)."""
    import mmseg
    return osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs')


@pytest.fixture(scope='session')
def cityscapes_root(tmp_path_factory):
    """A small generated dataset in Cityscapes' on-disk layout."""
    from mmseg_ssanet.datasets import generate
    root = str(tmp_path_factory.mktemp('data') / 'cityscapes')
    generate(
        'cityscapes',
        root,
        num_train=8,
        num_val=4,
        num_test=2,
        height=64,
        width=128,
        seed=0)
    return root


def run_cli(args, cwd=ROOT, timeout=900):
    """Run a command line tool of the venv; return (returncode, output)."""
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    bin_dir = osp.dirname(sys.executable)
    env['PATH'] = bin_dir + os.pathsep + env.get('PATH', '')
    proc = subprocess.run(
        args,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout)
    return proc.returncode, proc.stdout


# Runs a script as from a plain checkout on a bare machine: the package's
# install (setuptools' editable finder) is dropped, and the working folder
# is not the repo, so only the tool's own sys.path line can find it.
_NOT_INSTALLED = (
    "import runpy, sys; "
    "sys.meta_path[:] = [f for f in sys.meta_path "
    "if '__editable__' not in str(getattr(f, '__module__', ''))]; "
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def run_from_plain_checkout(tool, args, cwd, timeout=900):
    """``tool`` (a path under the repo) with ``args``, run as on a machine
    where the package is not installed; returns (returncode, output)."""
    return run_cli(
        [sys.executable, '-c', _NOT_INSTALLED,
         osp.join(ROOT, tool), *args],
        cwd=cwd,
        timeout=timeout)


# The demo model (tests of the tools, the explorer and the mim CLI).
DEMO_CONFIG = 'configs/demo/ssanet_mobilenetv2_cpu_synthetic-cityscapes.py'
DEMO = osp.join(ROOT, DEMO_CONFIG)


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    """A checkpoint as mmengine writes it, of the demo model."""
    import torch
    from mmengine.runner.checkpoint import save_checkpoint
    from mmseg.datasets import CityscapesDataset

    from mmseg_ssanet.apis import load_segmentor
    torch.manual_seed(0)
    model = load_segmentor(DEMO)
    # trained offsets are not zero: move the sampling points (through the
    # bias, as an untrained backbone's features are close to zero)
    snl = model.decode_head.snl
    torch.nn.init.normal_(snl.offset.conv.weight, std=0.05)
    torch.nn.init.normal_(snl.offset.conv.bias, std=1.0)
    path = str(tmp_path_factory.mktemp('ckpt') / 'demo.pth')
    save_checkpoint(
        dict(
            state_dict=model.state_dict(),
            meta=dict(dataset_meta=dict(CityscapesDataset.METAINFO))), path)
    return path


def demo_images(cityscapes_root):
    """The validation images of ``cityscapes_root``."""
    return osp.join(cityscapes_root, 'leftImg8bit', 'val', 'frankfurt')


def data_options(root):
    """``--cfg-options`` re-rooting every dataloader, no worker processes."""
    opts = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [
            f'{loader}.dataset.data_root={root}', f'{loader}.num_workers=0',
            f'{loader}.persistent_workers=False'
        ]
    return opts


def read_miou(output: str) -> float:
    """The last mIoU an mmengine test/val loop logged."""
    import re
    found = re.findall(r'Iter\((?:test|val)\).*?mIoU: ([0-9.]+)', output)
    assert found, output[-3000:]
    return float(found[-1])


def check_miou(output: str, classes) -> float:
    """The last mIoU a test loop logged, checked against its own per-class
    table (mmseg's IoUMetric): one row per class of the dataset, and the
    mIoU is their mean over the classes present (nan rows left out)."""
    import math
    import re
    miou = read_miou(output)
    table = output[output.rindex('per class results:'):]
    rows = {
        m.group(1): float(m.group(2))
        for m in re.finditer(
            r'^\|\s+(.+?)\s+\|\s+([0-9.]+|nan)\s+\|\s+(?:[0-9.]+|nan)\s+\|$',
            table, re.M) if m.group(1) != 'Class'
    }
    names = [c.strip() for c in classes]  # (ADE20K's 'bed ')
    assert list(rows) == names, (set(names) - set(rows),
                                 set(rows) - set(names))
    present = [v for v in rows.values() if not math.isnan(v)]
    assert present, table[:2000]
    assert abs(miou - sum(present) / len(present)) <= 0.02, (miou, rows)
    return miou


# format -> (mmseg base dataset config, sub-folder the stock data_root names)
STOCK = {
    'cityscapes': ('cityscapes.py', ''),
    'ade20k': ('ade20k.py', 'ADEChallengeData2016'),
    'pascal_context': ('pascal_context_59.py', 'VOC2010'),
}


def stock_dataset(fmt, root, split):
    """The dataset exactly as mmseg's base config builds it, re-rooted."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    cfg = Config.fromfile(
        osp.join(mmseg_config_dir(), '_base_', 'datasets', STOCK[fmt][0]))
    loader = cfg.train_dataloader if split == 'train' else cfg.val_dataloader
    dataset_cfg = loader.dataset.copy()
    dataset_cfg.data_root = osp.join(root, STOCK[fmt][1])
    init_default_scope('mmseg')
    return DATASETS.build(dataset_cfg), cfg


def training_like_checkpoint(path):
    """What mmengine's Runner.save_checkpoint writes, minus the model."""
    import torch
    from mmengine.logging import MessageHub
    from mmengine.runner.checkpoint import save_checkpoint
    hub = MessageHub.get_instance('ssanet-compat-test')
    for i in range(5):
        hub.update_scalar('train/loss', 1.0 / (i + 1))
    hub.update_info('iter', 5)
    model = torch.nn.Conv2d(3, 4, 1)
    optim = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(1, 3, 4, 4)).sum().backward()
    optim.step()
    save_checkpoint(
        dict(
            meta=dict(seed=0, iter=5, dataset_meta=dict(classes=('a', 'b'))),
            state_dict=model.state_dict(),
            message_hub=hub.state_dict(),
            optimizer=optim.state_dict(),
            param_schedulers=[dict(last_step=5, base_lrs=[0.1])]), path)
    return model
