"""Bad setup fails early with a message that names the problem."""
import glob
import os
import subprocess
import sys

import pytest
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

from mmseg_ssanet.datasets import DatasetLayoutError, generate


def _cityscapes(root, split='train'):
    init_default_scope('mmseg')
    return DATASETS.build(
        dict(
            type='CityscapesDataset',
            data_root=root,
            data_prefix=dict(
                img_path=f'leftImg8bit/{split}',
                seg_map_path=f'gtFine/{split}'),
            pipeline=[]))


def test_missing_data_root(tmp_path):
    root = str(tmp_path / 'nowhere' / 'cityscapes')
    with pytest.raises(
            DatasetLayoutError,
            match=r"data_root '.*nowhere/cityscapes' does not "
            r"exist.*leftImg8bit"):
        _cityscapes(root)


def test_relative_data_root_says_where_it_looked(tmp_path, monkeypatch):
    # the configs' data_root='data/cityscapes/' is read from the current
    # folder, not the config's: the error names both
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
            DatasetLayoutError,
            match=r"data_root 'data/cityscapes/' does not exist "
            r"\(a relative path: looked for '" + str(tmp_path) +
            r"/data/cityscapes', from the "
            r"current folder '" + str(tmp_path)):
        _cityscapes('data/cityscapes/')


def test_dataset_in_another_layout(tmp_path):
    # An ADE20K folder where a Cityscapes one was expected.
    generate(
        'ade20k', str(tmp_path), num_train=2, num_val=1, height=48, width=64)
    with pytest.raises(
            DatasetLayoutError,
            match=r"image folder .*leftImg8bit/train' does not "
            r"exist.*CityscapesDataset expects"):
        _cityscapes(str(tmp_path))


def test_cityscapes_without_train_ids(tmp_path):
    # Raw Cityscapes ships labelIds; mmseg reads labelTrainIds, which the
    # converter writes. Forgetting it used to fail inside a worker.
    generate(
        'cityscapes',
        str(tmp_path),
        num_train=3,
        num_val=0,
        height=48,
        width=64)
    for f in glob.glob(
            str(tmp_path / 'gtFine/**/*labelTrainIds.png'), recursive=True):
        os.remove(f)
    with pytest.raises(
            DatasetLayoutError,
            match=r'3 of 3 label files are missing.*'
            r'labelTrainIds.*dataset_converters'):
        _cityscapes(str(tmp_path))


def test_images_with_the_wrong_suffix(tmp_path):
    img_dir = tmp_path / 'leftImg8bit' / 'train' / 'aachen'
    img_dir.mkdir(parents=True)
    (img_dir / 'aachen_000000_000019.jpg').write_bytes(b'')
    with pytest.raises(
            DatasetLayoutError,
            match=r"no images ending in '_leftImg8bit.png'"):
        _cityscapes(str(tmp_path))


def test_unlabelled_test_split_is_fine(tmp_path):
    # A test split without its placeholder labels still lists (format_only
    # runs with a pipeline that does not load labels read it).
    generate(
        'cityscapes',
        str(tmp_path),
        num_train=0,
        num_val=0,
        num_test=2,
        height=48,
        width=64)
    for f in glob.glob(str(tmp_path / 'gtFine/test/*/*.png')):
        os.remove(f)
    os.removedirs(str(tmp_path / 'gtFine/test/berlin'))
    assert len(_cityscapes(str(tmp_path), 'test')) == 2


def test_mmcv_without_compiled_ops_is_named():
    # Make ``mmcv._ext`` unimportable, as under mmcv-lite, then import us.
    code = ("import sys; sys.modules['mmcv._ext'] = None\n"
            "import mmseg_ssanet\n")
    proc = subprocess.run([sys.executable, '-c', code],
                          capture_output=True,
                          text=True)
    assert proc.returncode != 0
    assert 'mmcv is installed without its compiled ops (mmcv-lite' \
        in proc.stderr
    assert 'mmcv==2.1.0' in proc.stderr


MMCV_FOR_ANOTHER_TORCH = r'''
import sys
class OtherTorchBuild:  # mmcv._ext as it fails when built for another torch
    def find_spec(self, name, path=None, target=None):
        if name == 'mmcv._ext':
            raise ImportError('/site-packages/mmcv/_ext.so: undefined symbol: '
                              '_ZN2at4_ops5zeros4callE')
sys.meta_path.insert(0, OtherTorchBuild())
import mmseg_ssanet
'''


def test_mmcv_built_for_another_torch_is_named():
    proc = subprocess.run([sys.executable, '-c', MMCV_FOR_ANOTHER_TORCH],
                          capture_output=True,
                          text=True)
    assert proc.returncode != 0
    import torch
    assert ("mmcv's compiled ops were built for another torch than the "
            f'installed {torch.__version__}') in proc.stderr
    assert 'mim install mmcv==2.1.0' in proc.stderr


TORCH_WITHOUT_NUMPY = r'''
import torch
def from_numpy(array):  # torch 2.1 (built against numpy 1.x) beside numpy 2
    raise RuntimeError('Numpy is not available')
torch.from_numpy = from_numpy
import mmseg_ssanet
'''


def test_a_torch_that_cannot_use_the_installed_numpy_is_named():
    # the real case runs in make compat-check (canonical stack, numpy 2)
    proc = subprocess.run([sys.executable, '-c', TORCH_WITHOUT_NUMPY],
                          capture_output=True,
                          text=True)
    assert proc.returncode != 0
    import numpy
    assert f'cannot use the installed numpy {numpy.__version__} (Numpy is ' \
        'not available)' in proc.stderr
    assert 'pip install "numpy<2"' in proc.stderr


def test_torch_older_than_2_1_is_named():
    # torch 2.0 lacks torch.compiler.disable, the feature the check asks for
    code = ('import torch, torch.compiler\n'
            'del torch.compiler.disable\n'
            'import mmseg_ssanet.ops\n')
    proc = subprocess.run([sys.executable, '-c', code],
                          capture_output=True,
                          text=True)
    assert proc.returncode != 0
    assert 'mmseg_ssanet needs torch >= 2.1' in proc.stderr


RUN_SETUP = r'''
import runpy, sys, torch
torch.__version__ = sys.argv[1]  # as a build against that torch sees it
sys.argv = ['setup.py', '--name']
runpy.run_path('setup.py', run_name='__main__')
'''


@pytest.mark.parametrize(
    'version, refused, says',
    [('2.0.1', True, 'mmseg_ssanet needs torch >= 2.1 (tested 2.1 to 2.14); '
      'this environment has torch 2.0.1'),
     ('2.99.0+cu130', False, 'building against torch 2.99.0+cu130, newer '
      'than the tested 2.1-2.14'), ('2.1.2+cu121', False, None)])
def test_build_names_a_torch_outside_the_tested_range(version, refused, says):
    from .conftest import ROOT
    proc = subprocess.run([sys.executable, '-c', RUN_SETUP, version],
                          cwd=ROOT,
                          capture_output=True,
                          text=True,
                          env=dict(os.environ, SSANET_NO_EXT='0'))
    assert (proc.returncode != 0) == refused, proc.stderr[-2000:]
    if says:
        assert says in proc.stderr
    else:
        assert 'tested' not in proc.stderr
    if not refused:
        assert proc.stdout.strip().endswith('mmseg_ssanet')
