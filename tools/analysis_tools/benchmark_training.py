"""Short training runs of configs on generated data: time and memory.

Each config trains ``--iters`` iterations on generated Cityscapes images
(``--size``, the crop too) with its schedule shortened
(:func:`mmseg_ssanet.utils.short_run.short_run_options`); reported: the
median time per iteration after 2 warm-up ones and, on CUDA, the peak
memory the allocator held. Where mmcv's compiled ops do not run on the
device, each config's row says why instead.

Example (on a GPU machine)::

    python tools/analysis_tools/benchmark_training.py \\
        configs/ssanet_mobilenetv2_cityscapes.py --out work_dirs/training

writes ``training.md`` and ``training.json`` there.
"""
import argparse
import os.path as osp
import statistics
import sys
import tempfile

import torch

# the repo root: the tool runs from a plain checkout
sys.path.insert(0, osp.abspath(osp.join(__file__, *['..'] * 3)))

COLUMNS = [
    'config', 'crop', 'batch', 'iterations', 'ms_per_iter', 'peak_mb',
    'skipped'
]


def mmcv_ops_for(device):
    """None if mmcv's compiled ops run on ``device``, else why not."""
    try:
        from mmcv.ops import get_compiling_cuda_version
    except ImportError as err:
        return f'mmcv with compiled ops is not installed ({err})'
    if device == 'cuda' and get_compiling_cuda_version() == 'not available':
        return 'mmcv\'s ops are built without CUDA'
    return None


def train(path, root, args, work_dir):
    """One config's short run; its row."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mmseg_ssanet.utils.argument_types import cfg_options_dict
    from mmseg_ssanet.utils.short_run import short_run_options
    cfg = Config.fromfile(path)
    cfg.merge_from_dict(
        cfg_options_dict(
            short_run_options(
                path,
                root,
                args.size,
                max_iters=args.iters,
                batch_size=args.batch)))
    cfg.work_dir = work_dir
    cfg.default_hooks.checkpoint.interval = args.iters + 1
    cfg.device = args.device
    cuda = args.device == 'cuda'
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    runner = Runner.from_cfg(cfg)
    runner.train()
    times = list(runner.message_hub.get_scalar('train/time').data[0][2:])
    return dict(
        config=osp.relpath(path),
        crop='x'.join(map(str, args.size)),
        batch=args.batch,
        iterations=args.iters,
        ms_per_iter=1e3 * statistics.median(times) if times else None,
        peak_mb=torch.cuda.max_memory_allocated() / 2**20 if cuda else None)


def main(argv=None):
    from mmseg_ssanet.benchmark import markdown_table, write_outputs
    from mmseg_ssanet.utils.argument_types import image_size
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='+', help='configs to train')
    parser.add_argument(
        '--size',
        type=image_size,
        default=(512, 1024),
        metavar='HxW',
        help='generated images and crop (default 512x1024)')
    parser.add_argument(
        '--iters',
        type=int,
        default=20,
        help='iterations per config, 2 of them warm-up (default 20)')
    parser.add_argument(
        '--batch',
        type=int,
        default=2,
        help='images per iteration (default 2)')
    parser.add_argument(
        '--device',
        default='cuda' if torch.cuda.is_available() else 'cpu',
        choices=['cuda', 'cpu'],
        help='where to train (default: cuda where there is one)')
    parser.add_argument(
        '--out',
        default='work_dirs/benchmark_training',
        help='folder for training.md and training.json')
    args = parser.parse_args(argv)
    reason = mmcv_ops_for(args.device)
    if reason:
        rows = [
            dict(config=osp.relpath(p), skipped=reason) for p in args.configs
        ]
    else:
        from mmseg_ssanet.datasets import generate
        with tempfile.TemporaryDirectory() as tmp:
            root = osp.join(tmp, 'cityscapes')
            h, w = args.size
            generate(
                'cityscapes',
                root,
                num_train=4,
                num_val=1,
                height=h,
                width=w,
                seed=0)
            rows = [
                train(p, root, args, osp.join(tmp, osp.basename(p)))
                for p in args.configs
            ]
    text = markdown_table(rows, COLUMNS, missing='')
    write_outputs(args.out, {'training.json': rows, 'training.md': text})
    print(text)


if __name__ == '__main__':
    main()
