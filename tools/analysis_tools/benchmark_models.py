"""The paper's Table 2 on this machine: whole-model inference cost.

MobileNetV2 (output stride 16) with no context module, PPM (PSPHead), ASPP
(ASPPHead), dense non-local (NLHead) and SNL (SNLHead, K=81), built from
the Table 2 configs, timed in one process on the same random input
(default 1x3x1024x2048; the paper: 2x3x1024x2048 on a Titan V100).
Reports median time, ratio to the baseline, the context module's overhead,
parameters and FLOPs (mmengine's counter with the SNL operator counted in
full, bilinear sampling included: :mod:`mmseg_ssanet.utils.flops`, as
``tools/analysis_tools/get_flops.py``), beside the paper's times. SNL runs on the
device's default backend (the fused C++ kernel on CPU).

    python tools/analysis_tools/benchmark_models.py --out work_dirs/benchmark_models
"""
import argparse
import json
import os
import os.path as osp
import time

import torch

MODELS_TABLE2 = [
    # name, config, paper's inference time (ms), paper's mIoU
    ('Baseline', 'configs/ablation/mobilenetv2_fcn-baseline_cityscapes.py',
     27, 70.39),
    ('+ PPM', 'configs/comparison/mobilenetv2_psp_cityscapes.py', 41, 72.88),
    ('+ ASPP', 'configs/comparison/mobilenetv2_aspp_cityscapes.py', 55,
     74.48),
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


def time_models(models, x, repeats):
    """Median ms per model, timed round-robin after a warm-up of each, so
    that the machine's drift and first-call costs hit all models alike."""
    meta = [dict(img_shape=x.shape[2:], pad_shape=x.shape[2:],
                 ori_shape=x.shape[2:])] * x.shape[0]
    times = [[] for _ in models]
    with torch.no_grad():
        for model in models:
            model.encode_decode(x, meta)  # warm-up
        for _ in range(repeats):
            for model, t in zip(models, times):
                start = time.perf_counter()
                model.encode_decode(x, meta)
                t.append(time.perf_counter() - start)
    return [1000 * sorted(t)[len(t) // 2] for t in times]


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--batch', type=int, default=1,
                        help='images per forward pass (default %(default)s)')
    parser.add_argument('--height', type=int, default=1024,
                        help='input height (default %(default)s)')
    parser.add_argument('--width', type=int, default=2048,
                        help='input width (default %(default)s)')
    parser.add_argument('--repeats', type=int, default=5,
                        help='timed passes per model, median reported '
                        '(default %(default)s)')
    parser.add_argument('--no-flops', action='store_true',
                        help='skip counting FLOPs')
    parser.add_argument('--out', default='work_dirs/benchmark_models',
                        help='folder for the table, JSON and plot (default '
                        '%(default)s)')
    args = parser.parse_args(argv)
    from tqdm import tqdm
    torch.manual_seed(0)
    x = torch.randn(args.batch, 3, args.height, args.width)
    models = [build(config) for _, config, _, _ in MODELS_TABLE2]
    ms = time_models(models, x, args.repeats)
    rows = []
    for (name, config, paper_ms, paper_miou), model, t in tqdm(
            list(zip(MODELS_TABLE2, models, ms)), desc='flops'):
        row = dict(method=name, config=config, paper_ms=paper_ms,
                   paper_miou=paper_miou, time_ms=t,
                   params_m=sum(p.numel() for p in model.parameters()) / 1e6)
        if not args.no_flops:
            row['gflops'] = count_flops(config, x) / 1e9
        rows.append(row)
    del models
    base = rows[0]
    for r in rows:
        r['ratio'] = r['time_ms'] / base['time_ms']
        r['overhead_ms'] = r['time_ms'] - base['time_ms']
        r['paper_overhead_ms'] = r['paper_ms'] - base['paper_ms']
    os.makedirs(args.out, exist_ok=True)
    shape = f'{args.batch}x3x{args.height}x{args.width}'
    lines = [f'input {shape}, {torch.get_num_threads()} threads',
             '| method | time ms | ratio | overhead ms | params M | GFLOPs '
             '| paper ms (V100, 2x3x1024x2048) | paper overhead ms |',
             '| --- | --- | --- | --- | --- | --- | --- | --- |']
    for r in rows:
        gflops = f"{r['gflops']:.1f}" if 'gflops' in r else '-'
        lines.append(
            f"| {r['method']} | {r['time_ms']:.0f} | {r['ratio']:.2f} | "
            f"{r['overhead_ms']:.0f} | {r['params_m']:.2f} | {gflops} | "
            f"{r['paper_ms']} | {r['paper_overhead_ms']} |")
    table = '\n'.join(lines) + '\n'
    with open(osp.join(args.out, 'results.md'), 'w') as f:
        f.write(table)
    with open(osp.join(args.out, 'results.json'), 'w') as f:
        json.dump(dict(input=shape, rows=rows), f, indent=1)
    plot(rows, osp.join(args.out, 'table2.png'), shape)
    print(table)


def plot(rows, path, shape):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    names = [r['method'] for r in rows]
    xs = range(len(rows))
    ax.bar([i - 0.2 for i in xs], [r['ratio'] for r in rows], 0.4,
           label=f'this machine (CPU, {shape})')
    ax.bar([i + 0.2 for i in xs],
           [r['paper_ms'] / rows[0]['paper_ms'] for r in rows], 0.4,
           label='paper (V100, 2x3x1024x2048)')
    ax.set_xticks(list(xs))
    ax.set_xticklabels(names)
    ax.set_ylabel('inference time / baseline')
    ax.axhline(1.0, color='grey', lw=0.8)
    ax.legend()
    ax.set_title('Table 2: context modules on MobileNetV2 (OS 16)')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == '__main__':
    main()
