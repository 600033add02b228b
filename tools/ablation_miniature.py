"""The paper's Table 1 in miniature, on generated context-dependent scenes.

Trains the MobileNetV2 baseline, + dense NL and + SNL (K = 9, 49, 81) from
the real Table 1/2 configs through ``mim train`` with the same short CPU
schedule and seed, scores each with ``mim test`` and writes a table of mIoU
and of the two classes that need context (road vs sidewalk: the same
ground texture, told apart only by the sky far above).

    python tools/ablation_miniature.py --out work_dirs/ablation_miniature
"""
import argparse
import json
import os
import os.path as osp
import re
import subprocess
import sys

from mmseg_ssanet.datasets import generate
from mmseg_ssanet.datasets.synthetic import image_size
from mmseg_ssanet.utils.short_run import short_run_options

ROWS = [
    ('Baseline', 'configs/ablation/mobilenetv2_fcn-baseline_cityscapes.py',
     70.39),
    ('+ NL', 'configs/comparison/mobilenetv2_nl_cityscapes.py', 73.75),
    ('+ SNL K=9', 'configs/ablation/mobilenetv2_snl-k9_cityscapes.py', 73.54),
    ('+ SNL K=49', 'configs/ablation/mobilenetv2_snl-k49_cityscapes.py',
     74.26),
    ('+ SNL K=81', 'configs/ablation/mobilenetv2_snl-k81_cityscapes.py',
     74.51),
]


def mim(args):
    mim_bin = osp.join(osp.dirname(sys.executable), 'mim')
    proc = subprocess.run([mim_bin, *args], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        sys.exit(f'error: mim {" ".join(args[:3])} failed:\n'
                 f'{proc.stdout[-3000:]}')
    return proc.stdout


def parse_scores(output):
    miou = float(re.findall(r'Iter\(test\).*?mIoU: ([0-9.]+)', output)[-1])
    per_class = {m.group(1): float(m.group(2)) for m in re.finditer(
        r'\|\s+([a-z ]+?)\s+\|\s+([0-9.]+)\s+\|\s+[0-9.]+\s+\|', output)}
    return miou, per_class


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='work_dirs/ablation_miniature')
    parser.add_argument('--num-train', type=int, default=64)
    parser.add_argument('--num-val', type=int, default=16)
    parser.add_argument('--size', type=image_size, default=(128, 256))
    parser.add_argument('--iters', type=int, default=400)
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--lr', type=float, default=0.02)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--only', nargs='+', help='row names to run')
    args = parser.parse_args(argv)
    from tqdm import tqdm
    data = osp.join(args.out, 'data', 'cityscapes')
    generate('cityscapes', data, args.num_train, args.num_val, *args.size,
             seed=args.seed)
    rows = [r for r in ROWS if not args.only or r[0] in args.only]
    results = []
    for name, config, paper in tqdm(rows, desc='ablation', unit='model'):
        work = osp.join(args.out, re.sub(r'[^a-z0-9]+', '_', name.lower()))
        opts = short_run_options(config, data, args.size, args.iters,
                                 args.batch, num_workers=2) + [
            f'optim_wrapper.optimizer.lr={args.lr}',
            f'randomness.seed={args.seed}', 'randomness.deterministic=False']
        mim(['train', 'mmseg', config, '--gpus', '0', '--work-dir', work,
             '--cfg-options', *opts])
        ckpt = osp.join(work, f'iter_{args.iters}.pth')
        out = mim(['test', 'mmseg', config, '--gpus', '0', '--work-dir',
                   work, '--checkpoint', ckpt, '--cfg-options', *opts])
        miou, per_class = parse_scores(out)
        results.append(dict(method=name, config=config, miou=miou,
                            road=per_class.get('road'),
                            sidewalk=per_class.get('sidewalk'),
                            per_class=per_class, paper_miou=paper))
    os.makedirs(args.out, exist_ok=True)
    lines = ['| method | mIoU | road IoU | sidewalk IoU | paper mIoU '
             '(Cityscapes val) |', '| --- | --- | --- | --- | --- |']
    for r in results:
        lines.append(f"| {r['method']} | {r['miou']:.2f} | {r['road']:.2f} "
                     f"| {r['sidewalk']:.2f} | {r['paper_miou']} |")
    table = '\n'.join(lines) + '\n'
    with open(osp.join(args.out, 'results.md'), 'w') as f:
        f.write(table)
    with open(osp.join(args.out, 'results.json'), 'w') as f:
        json.dump(dict(args={k: v for k, v in vars(args).items()},
                       rows=results), f, indent=1)
    print(table)


if __name__ == '__main__':
    main()
