"""Checkpoints for publishing: weights and plain metadata only.

mmengine's training checkpoints hold the optimizer, the schedulers and the
message hub (``HistoryBuffer`` objects), which torch's safe loader
(``weights_only=True``, the default since torch 2.6) refuses unless
given the allow-list of :mod:`.checkpoint_allowlist`. A published checkpoint
keeps only ``state_dict`` and ``meta``, with ``meta`` reduced to plain
Python values, so that ``torch.load(path, weights_only=True)`` reads it in
any process.
"""
import hashlib
import os
import os.path as osp
from typing import Any, List, Tuple

import numpy as np
import torch

from ..features import load_trusted


def plain(value: Any, where: str, dropped: List[str]) -> Any:
    """``value`` as dicts, lists, tuples, str, numbers, bools and None;
    numpy scalars and arrays converted, anything else dropped (and named
    in ``dropped``)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            converted = plain(v, f'{where}.{k}', dropped)
            if converted is not _DROP:
                out[str(k)] = converted
        return out
    if isinstance(value, (list, tuple)):
        items = [
            plain(v, f'{where}[{i}]', dropped) for i, v in enumerate(value)
        ]
        items = [v for v in items if v is not _DROP]
        return type(value)(items)
    dropped.append(f'{where} ({type(value).__name__})')
    return _DROP


_DROP = object()


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def publish_checkpoint(in_file: str, out_file: str) -> Tuple[str, List[str]]:
    """Write ``in_file``'s weights and plain meta; name it with the first 8
    hex digits of its sha256 (``out-1a2b3c4d.pth``, as OpenMMLab's model
    zoos do). Returns the final path and the meta entries dropped."""
    from .checkpoint_allowlist import mmengine_checkpoint_globals
    from .checkpoint_reading import read_checkpoint
    checkpoint = read_checkpoint(
        in_file,
        lambda path: load_trusted(path, mmengine_checkpoint_globals()))
    if 'state_dict' not in checkpoint:
        raise ValueError(f'{in_file!r} is not an mmengine checkpoint (no '
                         f'state_dict)')
    dropped: List[str] = []
    published = dict(
        state_dict={
            k: v.detach().clone()
            for k, v in checkpoint['state_dict'].items()
        },
        meta=plain(checkpoint.get('meta', {}), 'meta', dropped))
    stem = out_file[:-len('.pth')] if out_file.endswith('.pth') else out_file
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    tmp = stem + '.tmp.pth'
    torch.save(published, tmp)
    final = f'{stem}-{sha256_of(tmp)[:8]}.pth'
    os.replace(tmp, final)
    return final, dropped
