"""Draw where SSANet's sparse non-local block samples, for query pixels.

Example::

    python tools/visualize_sampling.py configs/demo/ssanet_mobilenetv2_cpu_synthetic-cityscapes.py \
        data/synthetic_cityscapes/leftImg8bit/val/frankfurt/frankfurt_000000_000019_leftImg8bit.png \
        --checkpoint work_dirs/demo/iter_400.pth --out sampling.png

The image goes through the config's ``test_pipeline``: a benchmark config
resizes it (Cityscapes: to 2048x1024), so for a small generated image pass
``--cfg-options test_pipeline.1.scale="(256,128)"`` to see it as trained.

Without ``--checkpoint`` the model is freshly initialised: its offsets are
zero and every point sits on the initial grid. Queries are ``y,x`` image
pixels (``--points 100,50 20,200``) or a ``--grid`` of them.

On scenes of ``tools/generate_data.py --variant cues``, ``--label`` (the
image's ``_gtFine_labelTrainIds.png``) puts a query at the centre of every
target, marks each target's cue and prints the attention weight each query
puts on its own cue (learned points) against the share of the initial grid
that covers it (the untrained block's uniform weights).
"""
import argparse
import sys

import numpy as np
from mmengine.config import DictAction

from mmseg_ssanet.apis import (draw_sampling_points, load_segmentor,
                               read_image, sampling_points_for)
from mmseg_ssanet.apis.cue_attention import (attention_on_cues, cue_box,
                                             read_cue_scene)
from mmseg_ssanet.apis.sampling import parse_point


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('image')
    parser.add_argument('--checkpoint')
    parser.add_argument('--points', nargs='+', type=parse_point)
    parser.add_argument('--grid', type=int, default=3)
    parser.add_argument('--label', help='the image\'s labelTrainIds.png of '
                        'a --variant cues scene: query every target and '
                        'mark its cue')
    parser.add_argument('--out', default='sampling_points.png')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={}, help='config overrides, as for mim test '
                        '(e.g. test_pipeline.1.scale="(256,128)" to keep a '
                        'small image at its size)')
    args = parser.parse_args(argv)
    try:
        model = load_segmentor(args.config, args.checkpoint, args.device,
                               cfg_options={**args.cfg_options,
                                            'model.test_cfg.mode': 'whole'})
        marks, on_cue = [], []
        if args.label:
            image, pairs = read_cue_scene(args.image, args.label)
            on_cue = attention_on_cues(model, image, pairs)
            samples = [c['sample'] for c in on_cue]
        else:
            image = read_image(args.image)
            samples = sampling_points_for(model, image, args.points,
                                          args.grid)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f'error: {err}')
    block_k = len(samples[0]['weights'])
    title = f'SNL sampling points, K={block_k}' + (
        '' if args.checkpoint else ' (untrained)')
    if on_cue:
        for i, c in enumerate(on_cue):
            pair = c['pair']
            print(f'target at {pair.target} ({pair.role}), cue '
                  f'{pair.distance:.0f} px away: attention on its cue '
                  f'{c["learned"]:.3f} (initial grid {c["initial"]:.3f})')
            marks.append((cue_box(pair), f'its cue ({pair.role})', i))
        learned = np.mean([c['learned'] for c in on_cue])
        initial = np.mean([c['initial'] for c in on_cue])
        print(f'mean attention on the own cue: {learned:.3f} '
              f'(initial grid: {initial:.3f})')
        title += (f'; mean weight on the own cue {learned:.2f} '
                  f'(initial grid {initial:.2f})')
    draw_sampling_points(image, samples, args.out, title=title, marks=marks)
    print(f'written: {args.out}')


if __name__ == '__main__':
    main()
