"""Write an interactive HTML page of where the SNL block samples.

Example::

    python tools/explore_sampling.py configs/demo/ssanet_mobilenetv2_cpu_synthetic-cityscapes.py \
        work_dirs/demo/iter_400.pth \
        data/synthetic_cityscapes/leftImg8bit/val/frankfurt/frankfurt_000001_000019_leftImg8bit.png \
        --out work_dirs/demo/sampling_explorer.html

One self-contained file (image, overlay and every query's sampling points
inlined; no server, no network): open it in a browser, hover a pixel to
see its K learned sampling points sized and shaded by attention weight
beside the initial grid, click to pin, toggle the segmentation overlay.
The model runs once on the whole image.
"""
import argparse
import os
import os.path as osp
import sys

from mmseg_ssanet.apis import load_segmentor, read_image
from mmseg_ssanet.apis.explorer import explorer_page


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('image')
    parser.add_argument('--out', default='sampling_explorer.html')
    parser.add_argument('--opacity', type=float, default=0.5)
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args(argv)
    try:
        model = load_segmentor(args.config, args.checkpoint, args.device,
                               cfg_options={'model.test_cfg.mode': 'whole'})
        image = read_image(args.image)
        page = explorer_page(model, image, osp.basename(args.image),
                             args.opacity)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f'error: {err}')
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        f.write(page)
    print(f'written {args.out} ({osp.getsize(args.out) / 2**20:.1f} MB)')


if __name__ == '__main__':
    main()
