"""The paper's Table 1 in miniature, over seeds, on scenes that need context.

Trains every Table 1 row (baseline, + SNL with K = 9, 49, 81, + global
pooling, + decoder) and the dense non-local comparison from the real configs
through ``mim train``, once per seed, with the same short CPU schedule;
scores each with ``mim test``; and writes mean +- std of mIoU and of the
context classes' IoU as JSON, a Markdown table and a bar plot.

The data is cue scenes (``generate_cue_data.py``): every target's class
(``car`` or ``person``) is told only by its own cue, a square 4-7 feature
pixels away (see ``projects/cue_scenes/paired_cues.py``). Run from the
repository root (the configs' paths are relative to it):

    python projects/cue_scenes/tools/ablation_miniature.py \
        --out work_dirs/ablation_miniature

Runs already scored in ``--out`` (their ``scores.json``) are reused, so an
interrupted table resumes; delete the folder to start over.
"""
import argparse
import json
import os.path as osp
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Tuple

import numpy as np

sys.path.insert(0, osp.abspath(osp.join(__file__, *['..'] * 4)))  # repo root
from mmseg_ssanet.utils.argument_types import cfg_options_dict, image_size
from mmseg_ssanet.utils.short_run import short_run_options
from projects.cue_scenes.paired_cues import (CUE_CLASSES, CUE_LABELS,
                                             DEFAULT_DISTANCE,
                                             generate_cue_scenes,
                                             pairs_from_labels,
                                             share_within_grid)


@dataclass(frozen=True)
class Row:
    """One row of the table: a real config, the paper's Cityscapes val mIoU
    for it (Tables 1 and 2), and whether it has an attention block (SNL or
    dense NL) whose weight on the cues is measured."""
    name: str
    config: str
    paper_miou: float
    attends: bool


ROWS = [
    Row('Baseline',
        'configs/ablation/mobilenetv2_fcn-baseline_cityscapes.py',
        70.39,
        attends=False),
    Row('+ NL (dense)',
        'configs/comparison/mobilenetv2_nl_cityscapes.py',
        73.75,
        attends=True),
    Row('+ SNL K=9',
        'configs/ablation/mobilenetv2_snl-k9_cityscapes.py',
        73.54,
        attends=True),
    Row('+ SNL K=49',
        'configs/ablation/mobilenetv2_snl-k49_cityscapes.py',
        74.26,
        attends=True),
    Row('+ SNL K=81',
        'configs/ablation/mobilenetv2_snl-k81_cityscapes.py',
        74.51,
        attends=True),
    Row('+ SNL K=81 + GP',
        'configs/ablation/mobilenetv2_snl-k81-gp_cityscapes.py',
        74.94,
        attends=True),
    Row('+ SNL K=81 + GP + decoder',
        'configs/ssanet_mobilenetv2_cityscapes.py',
        75.85,
        attends=True),
]


@dataclass(frozen=True)
class Schedule:
    """What every run of the table shares: image size (h, w), iterations,
    batch, learning rate and the extra ``--cfg-options``."""
    size: Tuple[int, int]
    iters: int
    batch: int
    lr: float
    cfg_options: Tuple[str, ...] = ()


SNL_STAT = re.compile(r'snl/([\w.]+)/(offset_mean|offset_max|entropy|'
                      r'outside): ([0-9.]+)')


def mim(args):
    mim_bin = osp.join(osp.dirname(sys.executable), 'mim')
    proc = subprocess.run([mim_bin, *args],
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True)
    if proc.returncode != 0:
        sys.exit(f'error: mim {" ".join(args[:3])} failed:\n'
                 f'{proc.stdout[-3000:]}')
    return proc.stdout


def parse_scores(output):
    """mIoU and per-class IoU from ``mim test``'s log."""
    miou = float(re.findall(r'Iter\(test\).*?mIoU: ([0-9.]+)', output)[-1])
    per_class = {
        m.group(1): float(m.group(2))
        for m in re.finditer(
            r'\|\s+([a-z ]+?)\s+\|\s+([0-9.]+)\s+\|\s+[0-9.]+\s+\|', output)
    }
    return miou, per_class


def last_snl_stats(output):
    """The SNL statistics hook's last logged values, per block."""
    stats = {}
    for block, key, value in SNL_STAT.findall(output):
        stats.setdefault(block, {})[key] = float(value)  # later lines win
    return stats


def cue_attention(config, checkpoint, data, schedule):
    """The trained attention block's weight on each target's own cue."""
    from mmengine.config import Config

    from mmseg_ssanet.apis import load_segmentor
    from projects.cue_scenes.cue_attention import cue_attention_over
    h, w = schedule.size
    resize = next(i
                  for i, t in enumerate(Config.fromfile(config).test_pipeline)
                  if t['type'] == 'Resize')
    model = load_segmentor(
        config,
        checkpoint,
        cfg_options={
            'model.pretrained': None,
            'model.backbone.init_cfg': None,
            'model.test_cfg.mode': 'whole',
            f'test_pipeline.{resize}.scale': (w, h),  # as trained and tested
            **cfg_options_dict(list(schedule.cfg_options))
        })
    return cue_attention_over(model, data)


def run_one(row, seed, data, out, schedule):
    work = osp.join(out,
                    re.sub(r'[^a-z0-9]+', '_', row.name.lower()).strip('_'),
                    f'seed{seed}')
    checkpoint = osp.join(work, f'iter_{schedule.iters}.pth')
    scores_file = osp.join(work, 'scores.json')
    if osp.exists(scores_file):
        with open(scores_file) as f:
            result = json.load(f)
        if not row.attends or 'similarity_own' in result.get(
                'cue_attention', {}):
            return result  # scored; else measured by an older version
    else:
        result = train_and_test(row, seed, data, work, checkpoint, schedule)
    if row.attends:
        result['cue_attention'] = cue_attention(row.config, checkpoint, data,
                                                schedule)
    with open(scores_file, 'w') as f:
        json.dump(result, f, indent=1)
    return result


def train_and_test(row, seed, data, work, checkpoint, schedule):
    config = row.config
    opts = short_run_options(
        config,
        data,
        schedule.size,
        schedule.iters,
        schedule.batch,
        num_workers=2) + [
            f'optim_wrapper.optimizer.lr={schedule.lr}',
            f'randomness.seed={seed}', 'randomness.deterministic=False',
            *schedule.cfg_options
        ]
    start = time.time()
    train_log = mim([
        'train', 'mmseg', config, '--gpus', '0', '--work-dir', work,
        '--cfg-options', *opts
    ])
    trained = time.time()
    out = mim([
        'test', 'mmseg', config, '--gpus', '0', '--work-dir', work,
        '--checkpoint', checkpoint, '--cfg-options', *opts
    ])
    miou, per_class = parse_scores(out)
    return dict(
        method=row.name,
        config=config,
        seed=seed,
        miou=miou,
        context_iou=float(np.mean([per_class[c] for c in CUE_CLASSES])),
        per_class=per_class,
        snl_stats=last_snl_stats(train_log),
        train_s=round(trained - start, 1),
        test_s=round(time.time() - trained, 1))


def cue_reach(data):
    """Cue distances of the validation set and the share of cues that each
    row's initial grid (dilation 1) covers from its target's centre."""
    import glob

    from mmseg.datasets import CityscapesDataset
    from PIL import Image
    classes = CityscapesDataset.METAINFO['classes']
    pairs = []
    for label in sorted(
            glob.glob(
                osp.join(data, 'gtFine', 'val', '*', '*_labelTrainIds.png'))):
        image = label.replace('gtFine', 'leftImg8bit',
                              1).replace('_gtFine_labelTrainIds',
                                         '_leftImg8bit')
        pairs += pairs_from_labels(
            np.array(Image.open(image)), np.array(Image.open(label)), classes)
    distances = [p.distance for p in pairs]
    return dict(
        num_pairs=len(pairs),
        distance_px=[round(min(distances)),
                     round(max(distances))],
        share_within_grid={
            f'K={k * k}': share_within_grid(pairs, (k, k))
            for k in (3, 7, 9)
        })


def summarise(runs):
    """Mean and sample std over seeds of mIoU and context IoU."""

    def stats(key):
        values = np.array([r[key] for r in runs])
        std = values.std(ddof=1) if len(values) > 1 else float('nan')
        return dict(
            mean=float(values.mean()), std=float(std), values=values.tolist())

    return dict(miou=stats('miou'), context_iou=stats('context_iou'))


def mean_std(values, digits=2):
    """``mean ± sample std``; the mean alone for a single value."""
    mean = f'{np.mean(values):.{digits}f}'
    if len(values) < 2:
        return mean
    return f'{mean} ± {np.std(values, ddof=1):.{digits}f}'


def markdown(rows):
    lines = [
        '| method | mIoU | context IoU (car, person) | context IoU per '
        'seed | attention on the own cue (uniform weights) | feature '
        'similarity target-own cue / target-other cue | SNL offset '
        'mean / max (feature px) | SNL entropy / log K | paper mIoU '
        '(Cityscapes val) |',
        '| --- | --- | --- | --- | --- | --- | --- | --- | --- |'
    ]
    for row in rows:
        s = row['summary']
        snl = [
            next(iter(r['snl_stats'].values())) for r in row['runs']
            if r['snl_stats']
        ]
        if snl:
            offsets = (f"{np.mean([x['offset_mean'] for x in snl]):.2f} / "
                       f"{np.mean([x['offset_max'] for x in snl]):.2f}")
            entropy = f"{np.mean([x['entropy'] for x in snl]):.3f}"
        else:
            offsets = entropy = '-'
        cues = [
            r['cue_attention'] for r in row['runs'] if 'cue_attention' in r
        ]
        on_cue = (f"{mean_std([c['learned'] for c in cues])} "
                  f"({np.mean([c['initial'] for c in cues]):.2f})"
                  if cues else '-')
        similar = [c for c in cues if 'similarity_own' in c]
        similarity = ' / '.join(
            f"{np.mean([c[key] for c in similar]):.3f}"
            for key in ('similarity_own',
                        'similarity_other')) if similar else '-'
        per_seed = ', '.join(f'{v:.1f}' for v in s['context_iou']['values'])
        lines.append(f"| {row['method']} | {mean_std(s['miou']['values'])} | "
                     f"{mean_std(s['context_iou']['values'])} | {per_seed} | "
                     f"{on_cue} | {similarity} | {offsets} | {entropy} | "
                     f"{row['paper_miou']} |")
    return '\n'.join(lines) + '\n'


def plot(rows, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    x = np.arange(len(rows))
    fig, (ax, ax_cue) = plt.subplots(
        1, 2, figsize=(13, 4.6), gridspec_kw=dict(width_ratios=[3, 1.4]))
    for shift, key, label in ((-0.2, 'miou', 'mIoU'), (0.2, 'context_iou',
                                                       'context IoU')):
        s = [r['summary'][key] for r in rows]
        ax.bar(
            x + shift, [v['mean'] for v in s],
            0.4,
            label=label,
            yerr=np.nan_to_num([v['std'] for v in s]),
            capsize=4)
        for i, v in enumerate(s):  # each seed as a dot
            ax.plot(
                [x[i] + shift] * len(v['values']),
                v['values'],
                'k.',
                markersize=4)
    ax.set_xticks(x, [r['method'] for r in rows], rotation=20, ha='right')
    ax.set_ylabel('IoU (%)')
    ax.set_ylim(0, 100)
    ax.legend(loc='upper left')
    ax.set_title('mean ± std over seeds (dots: seeds)', fontsize=10)
    attending = [
        r for r in rows if all('cue_attention' in run for run in r['runs'])
    ]
    for i, r in enumerate(attending):
        learned = [run['cue_attention']['learned'] for run in r['runs']]
        initial = np.mean(
            [run['cue_attention']['initial'] for run in r['runs']])
        ax_cue.bar(
            i - 0.2,
            np.mean(learned),
            0.4,
            color='tab:green',
            yerr=np.std(learned, ddof=1) if len(learned) > 1 else 0,
            capsize=4,
            label='trained' if i == 0 else None)
        ax_cue.plot([i - 0.2] * len(learned), learned, 'k.', markersize=4)
        ax_cue.bar(
            i + 0.2,
            initial,
            0.4,
            color='lightgray',
            label='uniform weights' if i == 0 else None)
    ax_cue.set_xticks(
        range(len(attending)), [
            r['method'].replace('+ SNL ', '').replace('+ ', '')
            for r in attending
        ],
        rotation=20,
        ha='right')
    ax_cue.set_ylim(0, 1)
    ax_cue.set_title('attention on the target\'s own cue', fontsize=10)
    if attending:
        ax_cue.legend(loc='upper left', fontsize=8)
    fig.suptitle('Table 1 in miniature, on scenes whose labels need a '
                 'distant cue')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--out',
        default='work_dirs/ablation_miniature',
        help='folder for the data, runs and results '
        '(default %(default)s); scored runs there are reused')
    parser.add_argument(
        '--num-train',
        type=int,
        default=512,
        help='training images (default %(default)s)')
    parser.add_argument(
        '--num-val',
        type=int,
        default=32,
        help='validation images (default %(default)s)')
    parser.add_argument(
        '--size',
        type=image_size,
        default=(128, 256),
        help='image size HxW (default 128x256)')
    parser.add_argument(
        '--cue-distance',
        type=int,
        nargs=2,
        default=DEFAULT_DISTANCE,
        metavar=('MIN', 'MAX'),
        help='target-to-cue distance in pixels, centre to '
        'centre (default %(default)s)')
    parser.add_argument(
        '--num-pairs',
        type=int,
        default=3,
        help='targets (each with a cue) per image '
        '(default %(default)s)')
    parser.add_argument(
        '--cue-labels',
        choices=CUE_LABELS,
        default='centre',
        help='what a cue\'s own label names (default '
        '%(default)s; see generate_cue_data.py)')
    parser.add_argument(
        '--iters',
        type=int,
        default=1000,
        help='training iterations per run (default '
        '%(default)s)')
    parser.add_argument(
        '--batch',
        type=int,
        default=4,
        help='images per iteration (default %(default)s)')
    parser.add_argument(
        '--lr',
        type=float,
        default=0.02,
        help='SGD learning rate (default %(default)s)')
    parser.add_argument(
        '--seeds',
        type=int,
        nargs='+',
        default=[0, 1, 2],
        help='training seeds, one run each per row '
        '(default 0 1 2)')
    parser.add_argument(
        '--data-seed',
        type=int,
        default=0,
        help='seed of the generated scenes (default '
        '%(default)s)')
    parser.add_argument(
        '--only',
        nargs='+',
        metavar='ROW',
        help='row names to run (default: all)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        metavar='KEY=VALUE',
        help='more overrides for every row (e.g. to try an '
        'offset learning rate)')
    args = parser.parse_args(argv)
    rows = [r for r in ROWS if not args.only or r.name in args.only]
    if args.only and len(rows) != len(args.only):
        parser.error(f'unknown row in --only {args.only}; rows: '
                     f'{[r.name for r in ROWS]}')
    schedule = Schedule(
        size=args.size,
        iters=args.iters,
        batch=args.batch,
        lr=args.lr,
        cfg_options=tuple(args.cfg_options))
    from tqdm import tqdm
    start = time.time()
    data = osp.join(args.out, 'data', 'cityscapes')
    generate_cue_scenes(
        'cityscapes',
        data,
        args.num_train,
        args.num_val,
        *args.size,
        seed=args.data_seed,
        num_pairs=args.num_pairs,
        cue_distance=args.cue_distance,
        cue_labels=args.cue_labels)
    jobs = [(row, seed) for row in rows for seed in args.seeds]
    runs = {}
    for row, seed in tqdm(jobs, desc='ablation', unit='run'):
        runs.setdefault(row.name, []).append(
            run_one(row, seed, data, args.out, schedule))
    results = [
        dict(
            method=row.name,
            config=row.config,
            paper_miou=row.paper_miou,
            runs=runs[row.name],
            summary=summarise(runs[row.name])) for row in rows
    ]
    minutes = (time.time() - start) / 60
    # what the runs took when trained (reused runs keep their times)
    run_minutes = sum(r['train_s'] + r['test_s'] for rs in runs.values()
                      for r in rs) / 60
    reach = cue_reach(data)
    table = markdown(results) + (
        f"\nValidation cues: {reach['num_pairs']}, "
        f"{reach['distance_px'][0]}-{reach['distance_px'][1]} px from their "
        f"targets; share inside the initial grid (dilation 1): " +
        ', '.join(f'{k} {v:.2f}'
                  for k, v in reach['share_within_grid'].items()) + '.\n')
    with open(osp.join(args.out, 'results.md'), 'w') as f:
        f.write(table)
    with open(osp.join(args.out, 'results.json'), 'w') as f:
        json.dump(
            dict(
                args={
                    k: v
                    for k, v in vars(args).items()
                },
                minutes=round(minutes, 1),
                run_minutes=round(run_minutes, 1),
                cue_reach=reach,
                rows=results),
            f,
            indent=1)
    plot(results, osp.join(args.out, 'results.png'))
    print(table)
    print(f'{len(jobs)} runs in {minutes:.1f} min (training and testing '
          f'them took {run_minutes:.1f} min); wrote {args.out}/'
          f'results.{{md,json,png}}')


if __name__ == '__main__':
    main()
