"""Draw where SSANet's sparse non-local block samples, for query pixels.

Example::

    VAL=data/synthetic_cityscapes/leftImg8bit/val/frankfurt
    python tools/visualization/visualize_sampling.py \
        configs/demo/ssanet_mobilenetv2_cpu_synthetic-cityscapes.py \
        work_dirs/demo/iter_400.pth \
        $VAL/frankfurt_000000_000019_leftImg8bit.png --out sampling.png

The image goes through the config's ``test_pipeline``: a benchmark config
resizes it (Cityscapes: to 2048x1024), so for a small generated image pass
``--cfg-options test_pipeline.1.scale="(256,128)"`` to see it as trained.

With ``none`` as the checkpoint the model is freshly initialised: its
offsets are zero and every point sits on the initial grid. Queries are
``y,x`` image pixels (``--points 100,50 20,200``) or a ``--grid`` of them.
(The cue-scene study's variant, a query on every target and its attention
on its own cue: ``projects/cue_scenes/tools/visualize_cue_attention.py``.)
"""
import argparse
import sys

from mmseg_ssanet.apis import (draw_sampling_points, read_image,
                               sampling_points_for)
from mmseg_ssanet.apis.sampling import parse_point
from mmseg_ssanet.apis.tool_arguments import (add_snl_model_arguments,
                                              snl_model_from)
from mmseg_ssanet.utils.argument_types import (SMALL_IMAGE_OPTION,
                                               add_cfg_options, add_device)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_snl_model_arguments(parser)
    parser.add_argument('image', help='the image to query')
    parser.add_argument(
        '--points',
        nargs='+',
        type=parse_point,
        metavar='Y,X',
        help='query pixels (default: a '
        '--grid of them)')
    parser.add_argument(
        '--grid',
        type=int,
        default=3,
        help='without --points: a GRID x GRID spread of '
        'queries (default %(default)s)')
    parser.add_argument(
        '--out',
        default='sampling_points.png',
        help='PNG to write (default %(default)s)')
    add_device(parser)
    add_cfg_options(parser, SMALL_IMAGE_OPTION)
    args = parser.parse_args(argv)
    try:
        model = snl_model_from(args)
        image = read_image(args.image)
        samples = sampling_points_for(model, image, args.points, args.grid)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f'error: {err}')
    title = f'SNL sampling points, K={len(samples[0].weights)}' + (
        '' if args.checkpoint != 'none' else ' (untrained)')
    draw_sampling_points(image, samples, args.out, title=title)
    print(f'written: {args.out}')


if __name__ == '__main__':
    main()
