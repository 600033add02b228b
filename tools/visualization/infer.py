"""Segment images with any config + checkpoint; write colour overlays (PNG).

Example::

    python tools/visualization/infer.py \
        configs/demo/ssanet_mobilenetv2_cpu_synthetic-cityscapes.py \
        work_dirs/demo/iter_400.pth \
        data/synthetic_cityscapes/leftImg8bit/val/frankfurt \
        --out work_dirs/demo/overlays

Inputs are image files and/or folders. Uses mmseg's ``inference_model``
and ``SegLocalVisualizer``; a missing checkpoint or a checkpoint that does
not fit the config stops with a message that says so. An image that cannot
be read is skipped with a warning naming it, the others are drawn, and the
exit status is 1 if any was skipped.
"""
import argparse
import sys

from mmseg_ssanet.apis import collect_images, draw_overlays, load_segmentor
from mmseg_ssanet.utils.argument_types import add_cfg_options, add_device


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='model config')
    parser.add_argument('checkpoint', help='trained weights')
    parser.add_argument('inputs', nargs='+', help='image files or folders')
    parser.add_argument(
        '--out',
        default='work_dirs/overlays',
        help='folder for the overlays (default %(default)s)')
    parser.add_argument(
        '--opacity',
        type=float,
        default=0.5,
        help='opacity of the prediction overlay (default '
        '%(default)s)')
    add_device(parser)
    add_cfg_options(parser)
    args = parser.parse_args(argv)
    try:
        images = collect_images(args.inputs)
        model = load_segmentor(
            args.config,
            args.checkpoint,
            args.device,
            cfg_options=args.cfg_options)
        written, skipped = draw_overlays(model, images, args.out, args.opacity)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f'error: {err}')
    print(f'{len(written)} overlays written to {args.out}; '
          f'{len(skipped)} of {len(images)} images skipped')
    for path, reason in skipped:
        print(f'  skipped {path}: {reason}')
    if skipped:
        sys.exit(1)


if __name__ == '__main__':
    main()
