"""Inference speed (images / s) of a config + checkpoint on its test set.

Example::

    python tools/analysis_tools/benchmark_fps.py \
        configs/demo/ssanet_mobilenetv2_cpu_synthetic-cityscapes.py \
        work_dirs/demo/iter_400.pth --images 50 --cfg-options \
        test_dataloader.dataset.data_root=data/synthetic_cityscapes

mmseg's ``tools/analysis_tools/benchmark.py`` reports only once it has
seen 200 images: on a smaller test set it prints ``fps nan``. This runs the
same measurement (batch 1, ``mode='predict'``, the first ``--warmup``
images not timed) and goes round the test set again as often as needed to
time ``--images`` images, whatever its size. Prints images / s per round
and their mean, and writes them as JSON next to the checkpoint (or to
``--out``).
"""
import argparse
import json
import os.path as osp
import sys
import time


def images_per_second(model, loader, images: int, warmup: int) -> float:
    import torch
    seen, timed, elapsed = 0, 0, 0.0
    while timed < images:
        for data in loader:
            data = model.data_preprocessor(data, False)
            start = time.perf_counter()
            with torch.no_grad():
                model(data['inputs'], data['data_samples'], mode='predict')
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            if seen >= warmup:
                elapsed += time.perf_counter() - start
                timed += 1
            seen += 1
            if timed == images:
                break
    return timed / elapsed


def main(argv=None):
    from mmengine.config import Config

    from mmseg_ssanet.utils.argument_types import add_cfg_options, add_device
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'config', help='model config (its test data is '
        'timed)')
    parser.add_argument('checkpoint', help='trained weights')
    parser.add_argument(
        '--images',
        type=int,
        default=200,
        help='images timed per round (default %(default)s)')
    parser.add_argument(
        '--warmup',
        type=int,
        default=5,
        help='untimed images first (default %(default)s)')
    parser.add_argument(
        '--repeat-times',
        type=int,
        default=1,
        help='timed rounds (default %(default)s)')
    add_device(parser)
    parser.add_argument(
        '--out', help='JSON file (default: next to the '
        'checkpoint)')
    add_cfg_options(parser)
    args = parser.parse_args(argv)
    if args.images < 1 or args.warmup < 0 or args.repeat_times < 1:
        sys.exit('error: --images and --repeat-times must be >= 1, '
                 '--warmup >= 0')

    import numpy as np
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    from mmseg_ssanet.apis import load_segmentor
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    try:
        model = load_segmentor(
            args.config,
            args.checkpoint,
            args.device,
            cfg_options=args.cfg_options)
        cfg.test_dataloader.batch_size = 1
        loader = Runner.build_dataloader(cfg.test_dataloader)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f'error: {err}')
    if len(loader.dataset) == 0:
        sys.exit('error: the test set is empty')
    rounds = []
    for r in range(args.repeat_times):
        fps = images_per_second(model, loader, args.images, args.warmup)
        rounds.append(fps)
        print(f'round {r + 1}: {fps:.2f} img / s ({args.images} images, '
              f'test set of {len(loader.dataset)})')
    result = dict(
        config=args.config,
        checkpoint=args.checkpoint,
        unit='img / s',
        images=args.images,
        test_set=len(loader.dataset),
        rounds=rounds,
        average_fps=float(np.mean(rounds)),
        fps_variance=float(np.var(rounds)))
    out = args.out or osp.splitext(args.checkpoint)[0] + '_fps.json'
    with open(out, 'w') as f:
        json.dump(result, f, indent=1)
    print(f'average: {result["average_fps"]:.2f} img / s; written {out}')


if __name__ == '__main__':
    main()
