"""Arguments and argument types the command-line tools share."""
import argparse
from typing import List, Tuple


def image_size(text: str, minimum: int = 1) -> Tuple[int, int]:
    """Parse ``HxW`` (e.g. ``128x256``), each side at least ``minimum``.

    Raises ``argparse.ArgumentTypeError``, whose message argparse prints.
    """
    try:
        h, w = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'size {text!r}: expected HxW, e.g. 128x256') from None
    if h < minimum or w < minimum:
        raise argparse.ArgumentTypeError(
            f'size {text!r}: HxW must be at least {minimum}x{minimum}')
    return h, w


def add_cfg_options(parser: argparse.ArgumentParser, example: str = ''
                    ) -> None:
    """``--cfg-options KEY=VALUE ...`` as ``mim train/test`` take it."""
    from mmengine.config import DictAction
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={}, help='config overrides, as for mim '
                        'train/test' + (f' (e.g. {example})' if example
                                         else ''))


def cfg_options_dict(options: List[str]) -> dict:
    """``KEY=VALUE`` strings, as ``--cfg-options`` takes them (e.g. from
    ``short_run_options``), parsed the way ``mim`` parses them."""
    from mmengine.config import DictAction
    namespace = argparse.Namespace()
    DictAction([], 'cfg_options')(None, namespace, options)
    return namespace.cfg_options


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--device', default='cpu',
                        help='torch device (default %(default)s)')


# Keeps a generated 128x256 image at its size: benchmark configs resize
# test images to 2048x1024.
SMALL_IMAGE_OPTION = ('test_pipeline.1.scale="(256,128)" to keep a small '
                      'image at its size')


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """What every generated-dataset tool takes: layout, folder, split
    sizes, image size and seed."""
    from ..datasets.synthetic import FORMATS
    parser.add_argument('format', choices=FORMATS,
                        help='the benchmark whose layout to write')
    parser.add_argument('out_dir', help='dataset root to write into')
    parser.add_argument('--num-train', type=int, default=16,
                        help='training images (default %(default)s)')
    parser.add_argument('--num-val', type=int, default=4,
                        help='validation images (default %(default)s)')
    parser.add_argument('--size', type=image_size, default=(128, 256),
                        help='image size HxW (default 128x256)')
    parser.add_argument('--seed', type=int, default=0,
                        help='RNG seed: the same arguments write the same '
                        'files (default %(default)s)')


def add_snl_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``config checkpoint`` of the sampling tools; ``none`` as the
    checkpoint asks for a freshly initialised model."""
    parser.add_argument('config', help='model config (an SNL model)')
    parser.add_argument('checkpoint', help='trained weights, or "none" for '
                        'a freshly initialised model')


def snl_model_from(args: argparse.Namespace):
    """The model of ``add_snl_model_arguments`` (and ``add_device``,
    ``add_cfg_options``), set to infer on whole images."""
    from ..apis import load_segmentor
    checkpoint = None if args.checkpoint == 'none' else args.checkpoint
    return load_segmentor(args.config, checkpoint, args.device,
                          cfg_options={**args.cfg_options,
                                       'model.test_cfg.mode': 'whole'})
