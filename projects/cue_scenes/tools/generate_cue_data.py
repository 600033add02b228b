"""Write cue scenes (each target labelled by its own distant cue) in a
benchmark's on-disk layout.

Example::

    python projects/cue_scenes/tools/generate_cue_data.py \
        cityscapes data/cues --cue-distance 64 112 --preview cue_scenes.png

The layouts are those of ``tools/misc/generate_data.py`` (mmseg's stock
dataset configs read them); ``projects/cue_scenes/paired_cues.py`` says what
the scenes contain.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(__file__, *['..'] * 4)))  # repo root
from mmseg_ssanet.apis.tool_arguments import add_dataset_arguments
from projects.cue_scenes.paired_cues import (CUE_LABELS, DEFAULT_DISTANCE,
                                             generate_cue_scenes,
                                             preview_cue_scenes)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    add_dataset_arguments(parser)
    parser.add_argument(
        '--num-pairs',
        type=int,
        default=3,
        help='targets (each with a cue) per image (default '
        '%(default)s)')
    parser.add_argument(
        '--cue-distance',
        type=int,
        nargs=2,
        default=DEFAULT_DISTANCE,
        metavar=('MIN', 'MAX'),
        help='target-to-cue distance in pixels, centre '
        'to centre (default %(default)s)')
    parser.add_argument(
        '--cue-labels',
        choices=CUE_LABELS,
        default='centre',
        help='a cue\'s own label names its centre '
        '(default) or its hue and centre (two hues, at most '
        'two pairs per image)')
    parser.add_argument(
        '--preview',
        metavar='PNG',
        help='also draw the first three training scenes '
        'with their labels and target -> cue arrows')
    args = parser.parse_args(argv)
    try:
        written = generate_cue_scenes(
            args.format,
            args.out_dir,
            args.num_train,
            args.num_val,
            *args.size,
            seed=args.seed,
            num_pairs=args.num_pairs,
            cue_distance=args.cue_distance,
            cue_labels=args.cue_labels)
    except ValueError as e:
        parser.error(str(e))
    for split, ids in written.items():
        print(f'{args.format} {split}: {len(ids)} images in {args.out_dir}')
    if args.preview:
        preview_cue_scenes(
            args.preview,
            *args.size,
            args.seed,
            args.num_pairs,
            args.cue_distance,
            cue_labels=args.cue_labels)
        print(f'preview: {args.preview}')


if __name__ == '__main__':
    main()
