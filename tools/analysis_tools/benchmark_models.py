"""The paper's Table 2 on this machine: whole-model inference cost.

MobileNetV2 (output stride 16) with no context module, PPM (PSPHead), ASPP
(ASPPHead), dense non-local (NLHead) and SNL (SNLHead, K=81), built from
the Table 2 configs, timed in one process on the same random input
(default 1x3x1024x2048; the paper: 2x3x1024x2048 on a Titan V100), round
robin over models and precisions. Reports median time, ratio to the
baseline, the context module's overhead, peak memory on a GPU, parameters
and FLOPs (mmengine's counter with the SNL operator counted in full,
bilinear sampling included: :mod:`mmseg_ssanet.utils.flops`, as
``tools/analysis_tools/get_flops.py``), beside the paper's times. SNL runs on
the device's default backend (the fused C++ kernel on CPU, Triton on
CUDA); fp16 and bf16 are autocast, as ``mim train --amp`` runs.

    python tools/analysis_tools/benchmark_models.py \
        --out work_dirs/benchmark_models
    python tools/analysis_tools/benchmark_models.py --device cuda --batch 2 \
        --dtypes fp32 fp16 bf16 --no-flops --out work_dirs/table2_gpu
"""
import argparse
import contextlib
import functools
import os.path as osp

import torch

from mmseg_ssanet.benchmark import (interleaved, markdown_table, medians_ms,
                                    peak_memory_mb, save_bars, write_outputs)

MODELS_TABLE2 = [
    # name, config, paper's inference time (ms), paper's mIoU
    ('Baseline', 'configs/ablation/mobilenetv2_fcn-baseline_cityscapes.py', 27,
     70.39),
    ('+ PPM', 'configs/comparison/mobilenetv2_psp_cityscapes.py', 41, 72.88),
    ('+ ASPP', 'configs/comparison/mobilenetv2_aspp_cityscapes.py', 55, 74.48),
    ('+ NL', 'configs/comparison/mobilenetv2_nl_cityscapes.py', 42, 73.75),
    ('+ SNL', 'configs/comparison/mobilenetv2_snl_cityscapes.py', 39, 74.51),
]


def build(config_path, snl_backend=None):
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import mmseg_ssanet  # noqa: F401
    cfg = Config.fromfile(config_path)
    cfg.model.pretrained = None
    if snl_backend and cfg.model.decode_head.type == 'SNLHead':
        cfg.model.decode_head.snl_backend = snl_backend
    init_default_scope('mmseg')
    return revert_sync_batchnorm(MODELS.build(cfg.model)).eval()


DTYPES = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}


def _precision(device, dtype_name):
    dtype = DTYPES[dtype_name]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def time_models(models, x, repeats, dtype_names=('fp32', )):
    """``{(model index, dtype): (median ms, peak MB or None)}``: timed in
    interleaved rounds after a warm-up of each (the machine's drift and
    first-call costs hit all alike: :mod:`mmseg_ssanet.benchmark`); the
    peak allocated on a GPU (weights included) from one more pass each."""
    meta = [
        dict(
            img_shape=x.shape[2:],
            pad_shape=x.shape[2:],
            ori_shape=x.shape[2:])
    ] * x.shape[0]
    cuda = x.device.type == 'cuda'

    def run(model, name):
        with _precision(x.device, name):
            model.encode_decode(x, meta)

    cases = {
        (i, name): functools.partial(run, models[i], name)
        for name in dtype_names
        for i in range(len(models))
    }
    with torch.no_grad():
        ms = medians_ms(interleaved(cases, repeats, device=x.device))
        peaks = {
            case: peak_memory_mb(fn, x.device, held=True) if cuda else None
            for case, fn in cases.items()
        }
    return {case: (ms[case], peaks[case]) for case in cases}


def count_flops(config_path, x):
    from mmseg_ssanet.utils.flops import count_flops as count
    model = build(config_path)

    class Forward(torch.nn.Module):

        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, inputs):
            return self.m._forward(inputs)

    with torch.no_grad():
        return count(Forward(model), (x, ))[0]


COLUMNS = [
    'method', 'dtype',
    ('time_ms', 'time ms', '.1f'), ('ratio', 'ratio', '.2f'),
    ('overhead_ms', 'overhead ms', '.1f'), ('peak_mb', 'peak MB', '.0f'),
    ('params_m', 'params M', '.2f'), ('gflops', 'GFLOPs', '.1f'),
    ('paper_ms', 'paper ms (V100, 2x3x1024x2048)'),
    ('paper_overhead_ms', 'paper overhead ms')
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--batch',
        type=int,
        default=1,
        help='images per forward pass (default %(default)s)')
    parser.add_argument(
        '--height',
        type=int,
        default=1024,
        help='input height (default %(default)s)')
    parser.add_argument(
        '--width',
        type=int,
        default=2048,
        help='input width (default %(default)s)')
    parser.add_argument(
        '--repeats',
        type=int,
        default=5,
        help='timed passes per model, median reported '
        '(default %(default)s)')
    parser.add_argument(
        '--device',
        default=None,
        help='cpu or cuda (default: cuda where there is '
        'one, else cpu)')
    parser.add_argument(
        '--dtypes',
        nargs='+',
        default=['fp32'],
        choices=list(DTYPES),
        help='precisions, fp16/bf16 by autocast (default '
        '%(default)s)')
    parser.add_argument(
        '--no-flops', action='store_true', help='skip counting FLOPs')
    parser.add_argument(
        '--out',
        default='work_dirs/benchmark_models',
        help='folder for the table, JSON and plot (default '
        '%(default)s)')
    args = parser.parse_args(argv)
    from tqdm import tqdm
    device = torch.device(
        args.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, args.height, args.width)
    models = [build(config).to(device) for _, config, _, _ in MODELS_TABLE2]
    measured = time_models(models, x.to(device), args.repeats, args.dtypes)
    flops = {}
    if not args.no_flops:
        for _, config, _, _ in tqdm(MODELS_TABLE2, desc='flops'):
            flops[config] = count_flops(config, x) / 1e9
    rows = []
    for dtype_name in args.dtypes:
        base_ms = measured[(0, dtype_name)][0]
        for i, ((name, config, paper_ms, paper_miou),
                model) in enumerate(zip(MODELS_TABLE2, models)):
            t, peak = measured[(i, dtype_name)]
            row = dict(
                method=name,
                config=config,
                dtype=dtype_name,
                paper_ms=paper_ms,
                paper_miou=paper_miou,
                time_ms=t,
                peak_mb=peak,
                ratio=t / base_ms,
                overhead_ms=t - base_ms,
                paper_overhead_ms=paper_ms - MODELS_TABLE2[0][2],
                params_m=sum(p.numel() for p in model.parameters()) / 1e6)
            if config in flops:
                row['gflops'] = flops[config]
            rows.append(row)
    del models
    shape = f'{args.batch}x3x{args.height}x{args.width}'
    where = (
        torch.cuda.get_device_name(device) if device.type == 'cuda' else
        f'CPU, {torch.get_num_threads()} threads')
    table = f'input {shape}, {where}, torch {torch.__version__}\n' + \
        markdown_table(rows, COLUMNS)
    write_outputs(
        args.out, {
            'results.md': table,
            'results.json': dict(input=shape, device=where, rows=rows)
        })
    plot([r for r in rows if r['dtype'] == args.dtypes[0]],
         osp.join(args.out, 'table2.png'), f'{where}, {shape}')
    print(table)


def plot(rows, path, shape):
    save_bars(
        [r['method'] for r in rows], {
            f'this machine ({shape})': [r['ratio'] for r in rows],
            'paper (V100, 2x3x1024x2048)':
            [r['paper_ms'] / rows[0]['paper_ms'] for r in rows]
        }, path, 'Table 2: context modules on MobileNetV2 (OS 16)',
        'inference time / baseline')


if __name__ == '__main__':
    main()
