"""The user-facing tools: overlays, sampling pictures, export, benchmarks."""
import glob
import json
import os
import os.path as osp
import re
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from mmseg_ssanet.apis import (CheckpointMismatchError, load_segmentor,
                               sampling_points_for)
from mmseg_ssanet.apis.sampling import default_queries
from .conftest import DEMO, ROOT, demo_images, run_cli

INFER = 'tools/visualization/infer.py'


def test_infer_writes_overlays(tmp_path, checkpoint, cityscapes_root):
    out = str(tmp_path / 'overlays')
    code, log = run_cli([
        'python', INFER, DEMO, checkpoint,
        demo_images(cityscapes_root), '--out', out
    ])
    assert code == 0, log[-3000:]
    pngs = sorted(osp.basename(p) for p in glob.glob(osp.join(out, '*.png')))
    assert len(pngs) == 4
    overlay = np.array(Image.open(osp.join(out, pngs[0])))
    src = np.array(Image.open(osp.join(demo_images(cityscapes_root), pngs[0])))
    assert overlay.shape == src.shape  # drawn at the image's size
    assert np.abs(overlay.astype(int) - src.astype(int)).mean() > 1


@pytest.mark.parametrize('case, match', [
    ('missing', 'checkpoint .* does not exist'),
    ('unreadable', 'cannot read image'),
    ('mismatch', 'does not fit config'),
])
def test_infer_errors_are_named(tmp_path, checkpoint, case, match):
    img = tmp_path / 'img.png'
    Image.fromarray(np.zeros((32, 64, 3), np.uint8)).save(img)
    ckpt = checkpoint
    if case == 'missing':
        ckpt = str(tmp_path / 'nope.pth')
    elif case == 'unreadable':
        img.write_bytes(b'not a png')
    else:  # a checkpoint of another model: fewer classes
        state = torch.load(checkpoint)['state_dict']
        state['decode_head.conv_seg.weight'] = \
            state['decode_head.conv_seg.weight'][:5]
        del state['decode_head.conv_seg.bias']
        ckpt = str(tmp_path / 'other.pth')
        torch.save(dict(state_dict=state), ckpt)
    code, log = run_cli(
        ['python', INFER, DEMO, ckpt,
         str(img), '--out',
         str(tmp_path / 'o')])
    assert code != 0
    assert re.search(match, log), log[-2000:]


def test_infer_skips_unreadable_files_and_finishes(tmp_path, checkpoint,
                                                   cityscapes_root):
    # A folder with good images, an empty PNG and a truncated one: every
    # good image gets its overlay, each bad one is named, exit status 1.
    import shutil
    folder = tmp_path / 'mixed'
    shutil.copytree(demo_images(cityscapes_root), folder)
    (folder / 'a_empty.png').write_bytes(b'')
    good = sorted(folder.glob('*_leftImg8bit.png'))
    (folder / 'b_truncated.png').write_bytes(good[0].read_bytes()[:100])
    out = tmp_path / 'overlays'
    code, log = run_cli(
        ['python', INFER, DEMO, checkpoint,
         str(folder), '--out',
         str(out)])
    assert code == 1, log[-3000:]
    assert sorted(p.name for p in out.glob('*.png')) == sorted(p.name
                                                               for p in good)
    assert f'{len(good)} overlays written' in log
    assert f'2 of {len(good) + 2} images skipped' in log
    assert re.search(r'skipped .*a_empty\.png: cannot read image', log)
    assert re.search(r'skipped .*b_truncated\.png: cannot read image', log)


def test_load_segmentor_mismatch_lists_the_keys(tmp_path, checkpoint):
    state = torch.load(checkpoint)['state_dict']
    state['extra.weight'] = torch.zeros(1)
    path = str(tmp_path / 'x.pth')
    torch.save(dict(state_dict=state), path)
    with pytest.raises(CheckpointMismatchError, match='1 unexpected'):
        load_segmentor(DEMO, path)


def test_fresh_model_samples_on_the_initial_grid(cityscapes_root):
    model = load_segmentor(DEMO)
    image = np.array(
        Image.open(
            osp.join(
                demo_images(cityscapes_root),
                'frankfurt_000000_000019_leftImg8bit.png')))[..., ::-1]
    samples = sampling_points_for(model, image.copy(), [(10, 20), (50, 100)])
    assert len(samples) == 2
    for s in samples:
        assert s.points.shape == (81, 2)
        np.testing.assert_allclose(s.points, s.initial, atol=1e-5)
        assert s.weights.sum() == pytest.approx(1.0, abs=1e-5)
    assert default_queries(64, 128, 3)[4] == (32, 64)


def test_trained_offsets_move_points_and_picture_is_written(
        tmp_path, checkpoint, cityscapes_root):
    img = osp.join(
        demo_images(cityscapes_root),
        'frankfurt_000000_000019_leftImg8bit.png')
    out = str(tmp_path / 'sampling.png')
    code, log = run_cli([
        'python', 'tools/visualization/visualize_sampling.py', DEMO,
        checkpoint, img, '--out', out
    ])
    assert code == 0, log[-3000:]
    assert Image.open(out).size[0] > 500
    model = load_segmentor(
        DEMO, checkpoint, cfg_options={'model.test_cfg.mode': 'whole'})
    s = sampling_points_for(model,
                            np.array(Image.open(img))[..., ::-1].copy(),
                            [(32, 64)])[0]
    assert np.abs(s.points - s.initial).max() > 0.1


def test_onnx_export_matches_pytorch(tmp_path, checkpoint, cityscapes_root):
    pytest.importorskip('onnxruntime')
    img = osp.join(
        demo_images(cityscapes_root),
        'frankfurt_000000_000019_leftImg8bit.png')
    out = str(tmp_path / 'ssanet.onnx')
    code, log = run_cli([
        'python', 'tools/deployment/export_onnx.py', DEMO, checkpoint, img,
        '--out', out
    ])
    assert code == 0, log[-3000:]
    assert osp.getsize(out) > 1e6
    # checked at the image's size and at another one (dynamic axes)
    checked = re.findall(r'input \(1, 3, (\d+), (\d+)\): onnxruntime', log)
    assert checked == [('64', '128'), ('48', '160')], log[-2000:]
    import onnx
    dims = onnx.load(out).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims[2:]] == ['height', 'width']
    # a checked graph of standard operators whose sparse attention never
    # holds [B, C, N, K]: its largest intermediate is one [1, C, h, w] map
    assert "operator domains ['ai.onnx']" in log
    largest = re.search(
        r'largest intermediate of decode_head.snl: '
        r'\[(.*?)\] \((\d+) elements\)', log)
    shape = [int(d) for d in largest.group(1).split(',')]
    c, h, w = 256, 64 // 16, 128 // 16  # the head's channels, stride 16
    assert int(largest.group(2)) <= c * h * w, shape
    from mmseg_ssanet.apis.export import check_graph
    graph = check_graph(out, 64, 128, '/decode_head/snl/')
    assert 'GridSample' in graph['ops'] and graph['domains'] == ['ai.onnx']


def _onnx_infer_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'onnx_infer', osp.join(ROOT, 'tools/deployment/onnx_infer.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_onnx_inference_tool_matches_pytorch(tmp_path, checkpoint,
                                             cityscapes_root):
    images = demo_images(cityscapes_root)
    graph = str(tmp_path / 'ssanet.onnx')
    code, log = run_cli([
        'python', 'tools/deployment/export_onnx.py', DEMO, checkpoint,
        osp.join(images,
                 sorted(os.listdir(images))[0]), '--out', graph
    ])
    assert code == 0, log[-3000:]
    # as on a deployment machine: mmcv without its compiled ops, and the
    # plugin never imported
    blocked = ("import runpy, sys; sys.modules['mmcv._ext'] = None; "
               "sys.argv = sys.argv[1:]; "
               "runpy.run_path(sys.argv[0], run_name='__main__'); "
               "assert 'mmseg_ssanet' not in sys.modules")
    out = tmp_path / 'overlays'
    code, log = run_cli([
        sys.executable, '-c', blocked, 'tools/deployment/onnx_infer.py', DEMO,
        graph, images, '--out',
        str(out)
    ])
    assert code == 0, log[-3000:]
    assert len(list(out.glob('*.png'))) == 4 and '4 overlays written' in log
    # the same classes as PyTorch's mmseg inference on 99.9 % of pixels
    import mmcv
    from mmseg.apis import inference_model

    from mmseg_ssanet.apis import load_segmentor
    model = load_segmentor(DEMO, checkpoint)
    segmentor = _onnx_infer_module().OnnxSegmentor(DEMO, graph)
    for name in sorted(os.listdir(images)):
        image = mmcv.imread(osp.join(images, name))
        want = inference_model(model, image).pred_sem_seg.data[0].numpy()
        got = segmentor.predict(image)
        assert got.shape == want.shape
        assert (got == want).mean() >= 0.999
    # a graph that does not fit the config is refused, naming why
    for option, match in (('model.data_preprocessor.mean=[0,0,0]',
                           'exported with mean'),
                          ('model.decode_head.num_classes=5',
                           'classes, the config has 5')):
        code, log = run_cli([
            'python', 'tools/deployment/onnx_infer.py', DEMO, graph, images,
            '--out',
            str(out), '--cfg-options', option
        ])
        assert code != 0 and match in log, log[-2000:]


def test_benchmark_onnx_small_run(tmp_path):
    out = tmp_path / 'bench'
    code, log = run_cli([
        'python', 'tools/analysis_tools/benchmark_onnx.py', DEMO, '--sizes',
        '64x128', '--trace-size', '32x64', '--repeats', '1', '--out',
        str(out)
    ])
    assert code == 0, log[-3000:]
    result = json.load(open(out / 'results.json'))
    assert result['session'] == 'enable_mem_pattern=False'
    assert result['graph_mb'] > 1 and result['export_s'] > 0
    (row, ) = result['rows']
    for path in ('eager', 'ort'):
        assert row[path]['peak_mb'] > 100 and len(row[path]['times_s']) == 1
    text = (out / 'results.md').read_text()
    assert '| 64x128 | onnxruntime |' in text and 'Command: `python' in text


def test_benchmark_snl_small_run(tmp_path):
    out = str(tmp_path / 'bench')
    code, log = run_cli([
        'python', 'tools/analysis_tools/benchmark_snl.py', '--sizes', '49x49',
        '--channels', '32', '--batches', '1', '--repeats', '1', '--out', out
    ])
    assert code == 0, log[-3000:]
    results = json.load(open(osp.join(out, 'results.json')))
    rows = results['rows']
    assert {r['method']
            for r in rows} == {
                'snl', 'snl_csr', 'floor', 'floor_separate', 'nonlocal2d',
                'dense_sdpa'
            }
    nl = next(r for r in rows if r['method'] == 'nonlocal2d')
    assert nl['forward_ratio'] == 1.0
    assert all(r['forward_ms'] > 0 and r['peak_mem_mb'] >= 0 for r in rows)
    # the ratios against the floor are the measured times divided
    by = {r['method']: r for r in rows}
    floor_ratio = next(g for g in results['ratios']
                       if g['what'] == 'SNL fwd / floor')
    assert floor_ratio['values']['49x49'] == pytest.approx(
        by['snl']['forward_ms'] / by['floor']['forward_ms'])
    assert '| SNL fwd / floor | 49x49' in open(osp.join(out,
                                                        'results.md')).read()
    assert osp.getsize(osp.join(out, 'time_vs_n.png')) > 1000


@pytest.mark.slow
def test_benchmark_training_short_run(tmp_path):
    code, log = run_cli([
        'python', 'tools/analysis_tools/benchmark_training.py',
        f'{ROOT}/configs/ssanet_mobilenetv2_cityscapes.py', '--size', '64x128',
        '--iters', '4', '--batch', '2', '--device', 'cpu', '--out',
        str(tmp_path)
    ])
    assert code == 0, log[-3000:]
    row, = json.loads((tmp_path / 'training.json').read_text())
    assert row['config'].endswith('configs/ssanet_mobilenetv2_cityscapes.py')
    assert row['iterations'] == 4 and row['ms_per_iter'] > 0
    assert '| 64x128 |' in (tmp_path / 'training.md').read_text()


def test_benchmark_models_small_run(tmp_path):
    out = str(tmp_path / 'models')
    code, log = run_cli([
        'python', 'tools/analysis_tools/benchmark_models.py', '--height', '64',
        '--width', '128', '--repeats', '1', '--dtypes', 'fp32', 'bf16',
        '--out', out
    ])
    assert code == 0, log[-3000:]
    rows = json.load(open(osp.join(out, 'results.json')))['rows']
    methods = ['Baseline', '+ PPM', '+ ASPP', '+ NL', '+ SNL']
    assert [(r['method'], r['dtype']) for r in rows
            ] == [(m, d) for d in ('fp32', 'bf16') for m in methods]
    # each precision's ratios are to its own baseline
    assert rows[0]['ratio'] == rows[5]['ratio'] == 1.0
    assert rows[6]['ratio'] == pytest.approx(rows[6]['time_ms'] /
                                             rows[5]['time_ms'])
    rows = rows[:5]
    # the context modules add parameters and FLOPs over the baseline
    assert all(r['params_m'] > rows[0]['params_m'] for r in rows[1:])
    assert all(r['gflops'] > rows[0]['gflops'] for r in rows[1:])


def test_benchmark_fps_goes_round_a_small_test_set(tmp_path, checkpoint,
                                                   cityscapes_root):
    # mmseg's benchmark.py prints `fps nan` on fewer than 200 images
    out = str(tmp_path / 'fps.json')
    code, log = run_cli([
        'python', 'tools/analysis_tools/benchmark_fps.py', DEMO, checkpoint,
        '--images', '7', '--warmup', '1', '--repeat-times', '2', '--out', out,
        '--cfg-options', f'test_dataloader.dataset.data_root={cityscapes_root}'
    ])
    assert code == 0, log[-3000:]
    result = json.load(open(out))
    assert result['images'] == 7 and result['test_set'] < 7
    assert len(result['rounds']) == 2
    assert all(np.isfinite(f) and f > 0 for f in result['rounds'])
    assert 'nan' not in log


def test_browse_dataset_writes_samples_with_ground_truth(
        tmp_path, cityscapes_root):
    out = tmp_path / 'browse'
    code, log = run_cli([
        'python', 'tools/analysis_tools/browse_dataset.py', DEMO, '--out',
        str(out), '--max-images', '3', '--cfg-options',
        f'train_dataloader.dataset.data_root={cityscapes_root}'
    ])
    assert code == 0, log[-3000:]
    pngs = sorted(out.glob('*.png'))
    assert len(pngs) == 3 and '3 images written' in log
    drawn = np.array(Image.open(pngs[0]))
    assert drawn.ndim == 3 and drawn.shape[2] == 3
    # the ground truth is drawn over the image: far from a single colour
    assert drawn.reshape(-1, 3).std(0).mean() > 5


def _scalars(work_dir, losses, memory=(9000, 500)):
    log = work_dir / '20261204_120000' / 'vis_data'
    log.mkdir(parents=True)
    with open(log / 'scalars.json', 'w') as f:
        for i, loss in enumerate(losses, 1):
            f.write(
                json.dumps(
                    dict(
                        loss=loss,
                        time=0.5 if i < 4 else 0.25,
                        iter=i,
                        memory=memory[i > 1])) + '\n')
        f.write(json.dumps(dict(mIoU=1.0, step=len(losses))) + '\n')


@pytest.mark.parametrize(
    'losses, require, code, verdict',
    [
        ([4.0, 3.9, 3.5, 3.2, 3.0, 2.9, 2.8, 2.6, 2.5, 2.4
          ], 'falling', 0, 'yes, yes'),
        ([3.0, 3.1, 3.2, 3.3, 3.4], 'falling', 1, 'yes, NO'),
        ([3.0, float('nan'), 2.0, 1.0, 0.5], 'falling', 1, 'NO, NO'),
        # the CPU rehearsal's 2 steps: finite is asked, not falling
        ([4.100, 4.116], 'finite', 0, 'yes, NO'),
        ([4.1, float('inf')], 'finite', 1, 'NO, NO'),
    ])
def test_summarize_training(tmp_path, losses, require, code, verdict):
    _scalars(tmp_path, losses)
    rc, log = run_cli([
        'python', 'tools/misc/summarize_training.py',
        str(tmp_path), '--name', 'r', '--header', '--require', require
    ])
    assert rc == code, log
    header, _, row = log.strip().split('\n')
    assert header.startswith('| run | iterations |')
    cells = [c.strip() for c in row.strip('|').split('|')]
    assert cells[:2] == ['r', str(len(losses))]
    assert cells[3] == verdict
    # the last third's median time (_scalars: 0.5 s for iterations 1-3)
    seconds = 0.25 if len(losses) > 3 else 0.5
    assert float(cells[4]) == seconds and float(cells[5]) == 1 / seconds
    assert cells[6] == '9000; 500'


def test_summarize_training_names_a_missing_log(tmp_path):
    rc, log = run_cli(
        ['python', 'tools/misc/summarize_training.py',
         str(tmp_path)])
    assert rc == 1 and 'no mmengine scalar log' in log and str(tmp_path) in log


@pytest.fixture(scope='module')
def bad_files(tmp_path_factory, checkpoint):
    """Files a user might hand a tool by mistake, beside good ones."""
    d = tmp_path_factory.mktemp('bad')
    data = open(checkpoint, 'rb').read()
    (d / 'truncated.pth').write_bytes(data[:len(data) // 2])
    (d / 'empty.pth').write_bytes(b'')
    torch.save({'weights': torch.zeros(3)}, d / 'foreign.pth')
    (d / 'broken.py').write_text('model = dict(type=\n')
    (d / 'empty.py').write_text('')
    Image.fromarray(np.zeros((32, 64, 3), np.uint8)).save(d / 'good.png')
    png = (d / 'good.png').read_bytes()
    (d / 'truncated.png').write_bytes(png[:len(png) // 3])
    (d / 'bad.onnx').write_bytes(data[:4096])
    return d


# (tool, its arguments with {ckpt}/{cfg}/{img}/{onnx} to fill, the output
# path flag's value, the file named and what the error says of it)
BAD_INPUTS = [
    ('visualization/infer.py', '{cfg} truncated.pth {img} --out out',
     'truncated.pth', 'cannot be read: truncated'),
    ('visualization/infer.py', '{cfg} empty.pth {img} --out out', 'empty.pth',
     'is empty'),
    ('visualization/infer.py', 'broken.py {ckpt} {img} --out out', 'broken.py',
     'cannot be read: SyntaxError'),
    ('visualization/infer.py', 'empty.py {ckpt} {img} --out out', 'empty.py',
     'defines no model'),
    ('visualization/visualize_sampling.py',
     '{cfg} truncated.pth {img} --out out.png', 'truncated.pth',
     'cannot be read'),
    ('visualization/visualize_sampling.py',
     '{cfg} {ckpt} truncated.png --out out.png', 'truncated.png',
     'not an image file'),
    ('visualization/explore_sampling.py',
     '{cfg} empty.pth {img} --out out.html', 'empty.pth', 'is empty'),
    ('deployment/export_onnx.py', '{cfg} foreign.pth {img} --out out.onnx',
     'foreign.pth', 'does not fit config'),
    ('misc/publish_model.py', 'truncated.pth out.pth', 'truncated.pth',
     'cannot be read'),
    ('misc/publish_model.py', 'foreign.pth out.pth', 'foreign.pth',
     'not an mmengine checkpoint'),
    ('deployment/onnx_infer.py', '{cfg} bad.onnx {img} --out out', 'bad.onnx',
     'not an ONNX file'),
    ('deployment/onnx_infer.py', 'broken.py bad.onnx {img} --out out',
     'broken.py', 'cannot be read'),
]


@pytest.mark.parametrize(
    'tool, args, named, says',
    BAD_INPUTS,
    ids=[f'{t.split("/")[1][:-3]}-{n}' for t, _, n, _ in BAD_INPUTS])
def test_a_bad_file_gets_one_error_naming_it(bad_files, checkpoint, tool, args,
                                             named, says):
    # Truncated, empty or foreign checkpoints, configs, images and graphs:
    # one line "error: ... 'FILE' ..." (no traceback), exit status 1, and
    # nothing written.
    words = args.format(cfg=DEMO, ckpt=checkpoint, img='good.png').split()
    before = set(os.listdir(bad_files))
    code, log = run_cli(
        ['python', osp.join(ROOT, 'tools', tool), *words], cwd=str(bad_files))
    assert code == 1, log[-2000:]
    assert 'Traceback' not in log, log[-3000:]
    last = log.strip().splitlines()[-1]
    assert last.startswith('error: ') and repr(named) in last and \
        says in last, last
    assert set(os.listdir(bad_files)) == before  # nothing written


def test_collect_images_and_parse_point_name_bad_input(tmp_path):
    import argparse

    from mmseg_ssanet.apis import collect_images
    from mmseg_ssanet.apis.sampling import parse_point
    with pytest.raises(
            FileNotFoundError,
            match="no image or folder at "
            f"'{tmp_path / 'nope.png'}'"):
        collect_images([str(tmp_path / 'nope.png')])
    (tmp_path / 'notes.txt').write_text('not an image')
    with pytest.raises(FileNotFoundError, match='no images'):
        collect_images([str(tmp_path)])
    assert parse_point(' 12, 30') == (12, 30)
    for text in ('12', '1,2,3', 'a,b', ''):
        with pytest.raises(argparse.ArgumentTypeError, match='a point is y,x'):
            parse_point(text)


def test_out_of_range_values_are_refused(tmp_path, checkpoint):
    # a query outside the image, an opacity outside [0, 1], an ONNX opset
    # without GridSample: each a ValueError naming the value, nothing
    # written
    from mmseg_ssanet.apis import draw_overlays, sampling_points_for
    from mmseg_ssanet.apis.explorer import explorer_page
    from mmseg_ssanet.apis.export import export_onnx
    model = load_segmentor(DEMO, checkpoint)
    image = np.zeros((64, 128, 3), np.uint8)
    with pytest.raises(
            ValueError, match=r'query \(64, 5\) is outside the '
            '64x128 image'):
        sampling_points_for(model, image, [(64, 5)])
    path = tmp_path / 'img.png'
    Image.fromarray(image).save(path)
    for opacity in (-0.1, 1.5):
        with pytest.raises(ValueError, match='opacity must be in'):
            draw_overlays(model, [str(path)], str(tmp_path / 'o'), opacity)
        with pytest.raises(ValueError, match='opacity must be in'):
            explorer_page(model, image, opacity=opacity)
    with pytest.raises(ValueError, match='opset must be >= 16'):
        export_onnx(model, image, str(tmp_path / 'g.onnx'), opset=15)
    assert sorted(os.listdir(tmp_path)) == ['img.png']


def test_a_missing_ann_file_is_named(tmp_path):
    # PASCAL Context lists its images in an ann_file: gone, the dataset
    # says which file, for which dataset (datasets/layout_check.py)
    from mmseg_ssanet.datasets import DatasetLayoutError, generate
    from .conftest import stock_dataset
    generate(
        'pascal_context',
        str(tmp_path),
        num_train=2,
        num_val=1,
        height=32,
        width=48,
        seed=0)
    listed = glob.glob(
        str(tmp_path / 'VOC2010' / 'ImageSets' / '*' / 'val.txt'))
    assert listed
    os.remove(listed[0])
    with pytest.raises(
            DatasetLayoutError, match=r"ann_file '.*val\.txt' does not exist"):
        stock_dataset('pascal_context', str(tmp_path), 'val')


def test_benchmark_threads_and_generate_data_run(tmp_path):
    # more than --help: a tiny thread table (the kernel's thread counts
    # above the CPUs dropped, and said), and a dataset in its layout
    out = tmp_path / 'threads'
    code, log = run_cli([
        'python', 'tools/analysis_tools/benchmark_threads.py', '--sizes',
        '8x16', '--batches', '1', '--threads', '1', '4096', '--channels', '16',
        '--kernel-size', '3x3', '--repeats', '1', '--out',
        str(out)
    ])
    assert code == 0, log[-3000:]
    rows = json.load(open(out / 'threads.json'))
    rows = rows['rows'] if isinstance(rows, dict) else rows
    assert {r['threads'] for r in rows} == {1}
    assert '4096' in log  # the dropped count is named
    code, log = run_cli([
        'python', 'tools/misc/generate_data.py', 'ade20k',
        str(tmp_path / 'ade'), '--num-train', '2', '--num-val', '1', '--size',
        '32x48'
    ])
    assert code == 0, log[-3000:]
    images = glob.glob(
        str(tmp_path / 'ade' / 'ADEChallengeData2016' / 'images' / 'training' /
            '*.jpg'))
    labels = glob.glob(
        str(tmp_path / 'ade' / 'ADEChallengeData2016' / 'annotations' /
            'training' / '*.png'))
    assert len(images) == len(labels) == 2
    assert Image.open(labels[0]).size == (48, 32)
    code, log = run_cli([
        'python', 'tools/misc/generate_data.py', 'ade20k',
        str(tmp_path / 'bad'), '--size', '24x32'
    ])
    assert code == 2 and 'image size must be at least 32x32, got 24x32' \
        in log
    assert not (tmp_path / 'bad').exists()
