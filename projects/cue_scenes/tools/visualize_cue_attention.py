"""Draw where the SNL block samples for every target of a cue scene, and
print the attention weight each target's query puts on its own cue.

Example (from the repository root)::

    SCENE=frankfurt/frankfurt_000000_000019
    python projects/cue_scenes/tools/visualize_cue_attention.py \
        configs/ablation/mobilenetv2_snl-k81_cityscapes.py \
        work_dirs/ablation_miniature/snl_k_81/seed0/iter_1000.pth \
        data/cues/leftImg8bit/val/${SCENE}_leftImg8bit.png \
        data/cues/gtFine/val/${SCENE}_gtFine_labelTrainIds.png \
        --cfg-options "test_pipeline.1.scale=(256,128)" --out cue_attention.png

A query sits at the centre of every target; each target's cue is drawn in
its query's colour; the weight on the own cue (learned points) is printed
beside the share of the initial grid that covers it (the untrained block's
uniform weights). ``none`` as the checkpoint draws a freshly initialised
model.
"""
import argparse
import os.path as osp
import sys

import numpy as np

sys.path.insert(0, osp.abspath(osp.join(__file__, *['..'] * 4)))  # repo root
from mmseg_ssanet.apis import draw_sampling_points
from mmseg_ssanet.apis.tool_arguments import (add_snl_model_arguments,
                                              snl_model_from)
from mmseg_ssanet.utils.argument_types import (SMALL_IMAGE_OPTION,
                                               add_cfg_options, add_device)
from projects.cue_scenes.cue_attention import (attention_on_cues, cue_box,
                                               read_cue_scene)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    add_snl_model_arguments(parser)
    parser.add_argument('image', help='a cue scene\'s image')
    parser.add_argument('label', help='its _gtFine_labelTrainIds.png')
    parser.add_argument(
        '--out',
        default='cue_attention.png',
        help='PNG to write (default %(default)s)')
    add_device(parser)
    add_cfg_options(parser, SMALL_IMAGE_OPTION)
    args = parser.parse_args(argv)
    try:
        model = snl_model_from(args)
        image, pairs = read_cue_scene(args.image, args.label)
        on_cue = attention_on_cues(model, image, pairs)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f'error: {err}')
    marks = []
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
    samples = [c['sample'] for c in on_cue]
    title = (f'SNL sampling points, K={len(samples[0].weights)}' +
             ('' if args.checkpoint != 'none' else ' (untrained)') +
             f'; mean weight on the own cue {learned:.2f} '
             f'(initial grid {initial:.2f})')
    draw_sampling_points(image, samples, args.out, title=title, marks=marks)
    print(f'written: {args.out}')


if __name__ == '__main__':
    main()
