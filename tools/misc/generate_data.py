"""Write a small context-dependent dataset in a benchmark's on-disk layout.

Example::

    python tools/misc/generate_data.py cityscapes data/cityscapes \
        --num-train 32
    python tools/misc/generate_data.py ade20k data/ade/ --size 128x128
    python tools/misc/generate_data.py pascal_context data/VOCdevkit

The layouts are the ones mmseg's stock dataset configs read (``data_root`` of
``cityscapes.py``, ``ade20k.py`` and ``pascal_context_59.py``); see
``mmseg_ssanet/datasets/synthetic.py`` for what the street scenes contain
(the day or night sky decides the ground's label). The cue-scene study's
scenes: ``projects/cue_scenes/tools/generate_cue_data.py``.
"""
import argparse

from mmseg_ssanet.apis.tool_arguments import add_dataset_arguments
from mmseg_ssanet.datasets.synthetic import generate


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_dataset_arguments(parser)
    parser.add_argument(
        '--num-test',
        type=int,
        default=0,
        help='Cityscapes only: unlabelled test images')
    args = parser.parse_args(argv)
    try:
        written = generate(
            args.format,
            args.out_dir,
            args.num_train,
            args.num_val,
            *args.size,
            seed=args.seed,
            num_test=args.num_test)
    except ValueError as e:
        parser.error(str(e))
    for split, ids in written.items():
        print(f'{args.format} {split}: {len(ids)} images in {args.out_dir}')


if __name__ == '__main__':
    main()
