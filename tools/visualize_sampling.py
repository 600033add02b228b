"""Draw where SSANet's sparse non-local block samples, for query pixels.

Example::

    python tools/visualize_sampling.py configs/demo/ssanet_mobilenetv2_cpu_synthetic-cityscapes.py \
        data/synthetic_cityscapes/leftImg8bit/val/frankfurt/frankfurt_000000_000019_leftImg8bit.png \
        --checkpoint work_dirs/demo/iter_400.pth --out sampling.png

Without ``--checkpoint`` the model is freshly initialised: its offsets are
zero and every point sits on the initial grid. Queries are ``y,x`` image
pixels (``--points 100,50 20,200``) or a ``--grid`` of them.
"""
import argparse
import sys

from mmseg_ssanet.apis import (draw_sampling_points, load_segmentor,
                               read_image, sampling_points_for)
from mmseg_ssanet.apis.sampling import parse_point


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('image')
    parser.add_argument('--checkpoint')
    parser.add_argument('--points', nargs='+', type=parse_point)
    parser.add_argument('--grid', type=int, default=3)
    parser.add_argument('--out', default='sampling_points.png')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args(argv)
    try:
        model = load_segmentor(args.config, args.checkpoint, args.device,
                               cfg_options={'model.test_cfg.mode': 'whole'})
        image = read_image(args.image)
        samples = sampling_points_for(model, image, args.points, args.grid)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f'error: {err}')
    block_k = len(samples[0]['weights'])
    draw_sampling_points(image, samples, args.out,
                         title=f'SNL sampling points, K={block_k}'
                         + ('' if args.checkpoint else ' (untrained)'))
    print(f'written: {args.out}')


if __name__ == '__main__':
    main()
