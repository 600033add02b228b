"""Argument types the command-line tools share."""
import argparse
from typing import Tuple


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
