"""Argument types and conventions the command-line tools share.

Nothing here imports the plugin's own layers (the arguments over its
datasets and models are in :mod:`mmseg_ssanet.apis.tool_arguments`), so
tools that need torch alone (``gpu_report.py``, ``benchmark_threads.py``)
use it too.
"""
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


def add_cfg_options(parser: argparse.ArgumentParser,
                    example: str = '') -> None:
    """``--cfg-options KEY=VALUE ...`` as ``mim train/test`` take it."""
    from mmengine.config import DictAction
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='config overrides, as for mim '
        'train/test' + (f' (e.g. {example})' if example else ''))


def cfg_options_dict(options: List[str]) -> dict:
    """``KEY=VALUE`` strings, as ``--cfg-options`` takes them (e.g. from
    ``short_run_options``), parsed the way ``mim`` parses them."""
    from mmengine.config import DictAction
    namespace = argparse.Namespace()
    DictAction([], 'cfg_options')(None, namespace, options)
    return namespace.cfg_options


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        '--device', default='cpu', help='torch device (default %(default)s)')


# Keeps a generated 128x256 image at its size: benchmark configs resize
# test images to 2048x1024.
SMALL_IMAGE_OPTION = ('test_pipeline.1.scale="(256,128)" to keep a small '
                      'image at its size')
