"""Write a small context-dependent dataset in a benchmark's on-disk layout.

Example::

    python tools/generate_data.py cityscapes data/cityscapes --num-train 32
    python tools/generate_data.py ade20k data/ade/ --size 128x128
    python tools/generate_data.py pascal_context data/VOCdevkit
    python tools/generate_data.py cityscapes data/cues --variant cues \
        --cue-distance 64 112


The layouts are the ones mmseg's stock dataset configs read (``data_root`` of
``cityscapes.py``, ``ade20k.py`` and ``pascal_context_59.py``); see
``mmseg_ssanet/datasets/synthetic.py`` (street scenes, one image-global
cue) and ``paired_cues.py`` (``--variant cues``: each target labelled by its
own distant cue) for what the scenes contain.
"""
import argparse

from mmseg_ssanet.datasets.paired_cues import CUE_LABELS, DEFAULT_DISTANCE
from mmseg_ssanet.datasets.synthetic import (FORMATS, VARIANTS, generate,
                                             image_size, preview_cue_scenes)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('format', choices=FORMATS)
    parser.add_argument('out_dir', help='dataset root to write into')
    parser.add_argument('--num-train', type=int, default=16)
    parser.add_argument('--num-val', type=int, default=4)
    parser.add_argument('--num-test', type=int, default=0,
                        help='Cityscapes only: unlabelled test images')
    parser.add_argument('--size', type=image_size, default=(128, 256),
                        help='image size HxW (default 128x256)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--variant', choices=VARIANTS, default='street',
                        help='street: day/night sky decides the ground; '
                        'cues: each target is labelled by its own cue')
    parser.add_argument('--num-pairs', type=int, default=3,
                        help='cues: targets (each with a cue) per image')
    parser.add_argument('--cue-distance', type=int, nargs=2,
                        default=DEFAULT_DISTANCE, metavar=('MIN', 'MAX'),
                        help='cues: target-to-cue distance in pixels, centre '
                        'to centre (default %(default)s)')
    parser.add_argument('--cue-labels', choices=CUE_LABELS, default='centre',
                        help='cues: a cue\'s own label names its centre '
                        '(default) or its hue and centre (two hues, at most '
                        'two pairs per image)')
    parser.add_argument('--preview', metavar='PNG',
                        help='cues: also draw the first three training '
                        'scenes with their labels and target -> cue arrows')
    args = parser.parse_args(argv)
    if args.preview and args.variant != 'cues':
        parser.error('--preview draws --variant cues scenes only')
    try:
        written = generate(args.format, args.out_dir, args.num_train,
                           args.num_val, *args.size, seed=args.seed,
                           num_test=args.num_test, variant=args.variant,
                           num_pairs=args.num_pairs,
                           cue_distance=args.cue_distance,
                           cue_labels=args.cue_labels)
    except ValueError as e:
        parser.error(str(e))
    for split, ids in written.items():
        print(f'{args.format} {split}: {len(ids)} images in {args.out_dir}')
    if args.preview:
        preview_cue_scenes(args.preview, *args.size, args.seed,
                           args.num_pairs, args.cue_distance,
                           cue_labels=args.cue_labels)
        print(f'preview: {args.preview}')


if __name__ == '__main__':
    main()
