"""mmseg's own tools (from the installed package) on our configs and
checkpoints: the ones that work as they are. The others have ours in
tools/ (publish_model, get_flops, browse_dataset, benchmark_fps)."""
import glob
import os.path as osp

import numpy as np
from PIL import Image

from .conftest import DEMO, demo_images, run_cli


def mmseg_tool(path):
    import mmseg
    return osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools', path)


def test_test_py_out_show_dir_then_confusion_matrix(tmp_path, checkpoint,
                                                    cityscapes_root):
    data = f'test_dataloader.dataset.data_root={cityscapes_root}'
    out, show = tmp_path / 'preds', tmp_path / 'show'
    code, log = run_cli([
        'python',
        mmseg_tool('test.py'),
        DEMO,
        checkpoint,
        '--work-dir',
        str(tmp_path / 'work'),
        '--out',
        str(out),
        '--show-dir',
        str(show),
        '--cfg-options',
        data,
        # the demo config draws every image (mmseg: every
        # 50th); drawing reads runner.iter, which builds
        # the train set
        f'train_dataloader.dataset.data_root='
        f'{cityscapes_root}'
    ])
    assert code == 0, log[-3000:]
    assert 'mIoU' in log
    preds = sorted(out.glob('*.png'))
    assert len(preds) == 4  # the generated validation images
    assert np.array(Image.open(preds[0])).max() < 19  # train ids
    shown = glob.glob(str(show / '**' / '*.png'), recursive=True)
    assert len(shown) == 4, log[-2000:]

    code, log = run_cli([
        'python',
        mmseg_tool('analysis_tools/confusion_matrix.py'), DEMO,
        str(out),
        str(tmp_path / 'cm'), '--cfg-options', data
    ])
    assert code == 0, log[-3000:]
    assert osp.getsize(tmp_path / 'cm' / 'confusion_matrix.png') > 1000


def test_print_config_resolves_our_bases(tmp_path):
    # it also dumps the config to ./example.py: run it in a scratch folder
    from .conftest import ROOT
    code, log = run_cli([
        'python',
        mmseg_tool('misc/print_config.py'),
        osp.join(ROOT, 'configs/ssanet_r101_cityscapes.py')
    ],
                        cwd=str(tmp_path))
    assert code == 0, log[-2000:]
    assert "type='SNLHead'" in log and 'num_samples=81' in log
    assert "type='ResNetV1c'" in log  # from mmseg:: bases
    assert (tmp_path / 'example.py').is_file()


def test_mmseg_inferencer(tmp_path, checkpoint, cityscapes_root):  # noqa: F811
    from mmseg.apis import MMSegInferencer

    import mmseg_ssanet  # noqa: F401
    inferencer = MMSegInferencer(model=DEMO, weights=checkpoint, device='cpu')
    image = osp.join(
        demo_images(cityscapes_root),
        'frankfurt_000000_000019_leftImg8bit.png')
    result = inferencer(image, out_dir=str(tmp_path / 'inf'))
    assert result['predictions'].shape == (64, 128)
    assert glob.glob(str(tmp_path / 'inf' / 'vis' / '*.png'))
