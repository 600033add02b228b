"""Arguments the tools share over the plugin's datasets and models.

The argument types below them (sizes, ``--cfg-options``, ``--device``) are
in :mod:`mmseg_ssanet.utils.argument_types`.
"""
import argparse

from ..datasets.synthetic import FORMATS
from ..utils.argument_types import image_size
from .inference import load_segmentor


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    """What every generated-dataset tool takes: layout, folder, split
    sizes, image size and seed."""
    parser.add_argument(
        'format', choices=FORMATS, help='the benchmark whose layout to write')
    parser.add_argument('out_dir', help='dataset root to write into')
    parser.add_argument(
        '--num-train',
        type=int,
        default=16,
        help='training images (default %(default)s)')
    parser.add_argument(
        '--num-val',
        type=int,
        default=4,
        help='validation images (default %(default)s)')
    parser.add_argument(
        '--size',
        type=image_size,
        default=(128, 256),
        help='image size HxW (default 128x256)')
    parser.add_argument(
        '--seed',
        type=int,
        default=0,
        help='RNG seed: the same arguments write the same '
        'files (default %(default)s)')


def add_snl_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``config checkpoint`` of the sampling tools; ``none`` as the
    checkpoint asks for a freshly initialised model."""
    parser.add_argument('config', help='model config (an SNL model)')
    parser.add_argument(
        'checkpoint',
        help='trained weights, or "none" for '
        'a freshly initialised model')


def snl_model_from(args: argparse.Namespace):
    """The model of ``add_snl_model_arguments`` (and ``add_device``,
    ``add_cfg_options``), set to infer on whole images."""
    checkpoint = None if args.checkpoint == 'none' else args.checkpoint
    return load_segmentor(
        args.config,
        checkpoint,
        args.device,
        cfg_options={
            **args.cfg_options, 'model.test_cfg.mode': 'whole'
        })
