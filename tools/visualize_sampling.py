"""Draw where SSANet's sparse non-local block samples, for query pixels.

Example::

    python tools/visualize_sampling.py configs/demo/ssanet_mobilenetv2_cpu_synthetic-cityscapes.py \
        data/synthetic_cityscapes/leftImg8bit/val/frankfurt/frankfurt_000000_000019_leftImg8bit.png \
        --checkpoint work_dirs/demo/iter_400.pth --out sampling.png

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

from mmseg_ssanet.apis import (draw_sampling_points, load_segmentor,
                               read_image, sampling_points_for)
from mmseg_ssanet.apis.sampling import parse_point, weight_inside
from mmseg_ssanet.datasets.paired_cues import (CUE_SIZE, TARGET_SIZE,
                                               pairs_from_labels)


def cue_queries(image, label_file, class_names):
    """Query pixels at the targets' centres, and their cues' boxes."""
    from PIL import Image
    labels = np.array(Image.open(label_file))
    if labels.shape != image.shape[:2]:
        raise ValueError(f'{label_file} is not a label map of the image: '
                         f'shape {labels.shape}, image {image.shape[:2]}')
    pairs = pairs_from_labels(image[..., ::-1], labels, class_names)
    if not pairs:
        raise ValueError(f'{label_file} holds no target/cue pairs (is it '
                         f'from generate_data.py --variant cues?)')
    queries = [(p.target[0] + TARGET_SIZE // 2, p.target[1] + TARGET_SIZE // 2)
               for p in pairs]
    cue_boxes = [(*p.cue, CUE_SIZE, CUE_SIZE) for p in pairs]
    return pairs, queries, cue_boxes


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
    args = parser.parse_args(argv)
    try:
        model = load_segmentor(args.config, args.checkpoint, args.device,
                               cfg_options={'model.test_cfg.mode': 'whole'})
        image = read_image(args.image)
        marks, queries = [], args.points
        if args.label:
            from mmseg.datasets import CityscapesDataset  # the cues' layout
            pairs, queries, cue_boxes = cue_queries(
                image, args.label, CityscapesDataset.METAINFO['classes'])
        samples = sampling_points_for(model, image, queries, args.grid)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f'error: {err}')
    block_k = len(samples[0]['weights'])
    title = f'SNL sampling points, K={block_k}' + (
        '' if args.checkpoint else ' (untrained)')
    if args.label:
        on_cue = []
        for pair, sample, box in zip(pairs, samples, cue_boxes):
            # a point within half a feature pixel reads the cue's features
            learned, initial = weight_inside(sample, box,
                                             sample['stride'] / 2)
            on_cue.append((learned, initial))
            print(f'target at {pair.target} ({pair.role}), cue '
                  f'{pair.distance:.0f} px away: attention on its cue '
                  f'{learned:.3f} (initial grid {initial:.3f})')
            marks.append((box, f'cue ({pair.role})'))
        learned, initial = np.mean(on_cue, 0)
        print(f'mean attention on the own cue: {learned:.3f} '
              f'(initial grid: {initial:.3f})')
        title += (f'; mean weight on the own cue {learned:.2f} '
                  f'(initial grid {initial:.2f})')
    draw_sampling_points(image, samples, args.out, title=title, marks=marks)
    print(f'written: {args.out}')


if __name__ == '__main__':
    main()
