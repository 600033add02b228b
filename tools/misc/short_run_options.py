"""Print the ``--cfg-options`` that shrink a config to a short CPU run.

For trying a real config on a laptop or a CPU-only machine, on a small
dataset (``tools/misc/generate_data.py`` writes one in the benchmark's
layout): the data re-rooted, images kept at their size (the benchmark
configs resize to 2048x1024, where validating the R101 model took 87-99 s
per image on 2 cores), the crop and ``data_preprocessor.size`` set to it,
no pretrained weights (no download), a schedule of ``--iters`` iterations,
a checkpoint at half and at the end, and no worker processes. mmengine
validates at the last iteration whatever ``val_interval`` says; that is
on the small images here (``--no-val`` drops validation instead).

Example (the options are printed one per word, for ``$(...)``)::

    python tools/misc/short_run_options.py configs/ssanet_r101_cityscapes.py \\
        data/tiny_cityscapes --size 128x256 --iters 20
    mim train mmseg configs/ssanet_r101_cityscapes.py --gpus 0 \\
        --work-dir work_dirs/r101_short --cfg-options $(python \\
        tools/misc/short_run_options.py configs/ssanet_r101_cityscapes.py \\
        data/tiny_cityscapes --size 128x256 --iters 20)

What it prints is the list that
:func:`mmseg_ssanet.utils.short_run.short_run_options` returns (the tests
and the cue-scene study use the same).
"""
import argparse

from mmseg_ssanet.utils.argument_types import add_cfg_options, image_size


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='the config to shrink')
    parser.add_argument(
        'data_root',
        help='dataset root of the short run '
        '(the config\'s layout)')
    parser.add_argument(
        '--size',
        type=image_size,
        default=(128, 256),
        help='image size HxW of that data, used as the crop '
        '(default 128x256, what generate_data.py writes)')
    parser.add_argument(
        '--iters',
        type=int,
        default=20,
        help='training iterations (default %(default)s)')
    parser.add_argument(
        '--batch',
        type=int,
        default=2,
        help='images per iteration and process (default '
        '%(default)s; 1 needs a per-image norm, see '
        'docs/training.md)')
    parser.add_argument(
        '--no-val',
        action='store_true',
        help='no validation at all (mim test still works)')
    add_cfg_options(parser, 'model.decode_head.num_samples=49')
    args = parser.parse_args(argv)
    if args.iters < 1 or args.batch < 1:
        parser.error('--iters and --batch must be at least 1')
    from mmseg_ssanet.utils.short_run import short_run_options
    options = short_run_options(
        args.config,
        args.data_root,
        args.size,
        max_iters=args.iters,
        batch_size=args.batch,
        cfg_options=args.cfg_options)
    if args.no_val:
        options = [
            o for o in options
            if not o.startswith(('val_dataloader.', 'train_cfg.val_interval'))
        ]
        options += [
            'val_dataloader=None', 'val_cfg=None', 'val_evaluator=None'
        ]
    print(' '.join(options))


if __name__ == '__main__':
    main()
