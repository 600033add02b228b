"""Load a trained segmentor and draw its predictions, with clear errors."""
import copy
import os
import os.path as osp
import warnings
from typing import Iterable, List, Optional, Tuple

import mmcv
import numpy as np
import torch
from mmengine.runner.checkpoint import _load_checkpoint

from ..utils.checkpoint_reading import read_checkpoint

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


class CheckpointMismatchError(ValueError):
    """The checkpoint's weights do not fit the model the config builds."""


def check_checkpoint_matches(model: torch.nn.Module, state_dict: dict,
                             checkpoint: str, config: str) -> None:
    """Raise if keys or shapes differ (mmengine would only warn)."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = [
        f'{k}: checkpoint {tuple(state_dict[k].shape)} vs model '
        f'{tuple(v.shape)}' for k, v in own.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f'{len(missing)} weights missing (e.g. '
                         f'{missing[0]})')
        if unexpected:
            parts.append(f'{len(unexpected)} unexpected (e.g. '
                         f'{unexpected[0]})')
        if shapes:
            parts.append(f'{len(shapes)} of another shape (e.g. '
                         f'{shapes[0]})')
        raise CheckpointMismatchError(
            f'checkpoint {checkpoint!r} does not fit config {config!r}: '
            f'{"; ".join(parts)}. Was it trained with this config?')


def read_config(path: str, **kwargs):
    """mmengine's Config of ``path``, or an error naming the file and what
    is wrong with it (missing, not Python, no model)."""
    from mmengine.config import Config
    if not osp.isfile(path):
        raise FileNotFoundError(f'config {path!r} does not exist')
    try:
        cfg = Config.fromfile(path, **kwargs)
    except Exception as err:  # SyntaxError, a missing base, ...
        raise ValueError(f'config {path!r} cannot be read: '
                         f'{type(err).__name__}: {err}') from err
    if 'model' not in cfg:
        raise ValueError(f'config {path!r} defines no model (an mmseg '
                         f'config sets model = dict(...), or inherits one '
                         f'through _base_)')
    return cfg


def load_segmentor(config: str,
                   checkpoint: Optional[str] = None,
                   device: str = 'cpu',
                   cfg_options: Optional[dict] = None):
    """mmseg's ``init_model``, refusing a checkpoint that does not fit."""
    from mmseg.apis import init_model
    cfg = read_config(config)  # parsed once; init_model edits its copy
    if checkpoint is None:
        return init_model(cfg, None, device=device, cfg_options=cfg_options)
    state = read_checkpoint(
        checkpoint, lambda path: _load_checkpoint(path, map_location='cpu'))
    # Check before init_model loads: it only logs mismatched weights, and
    # fails with a bare KeyError on a checkpoint without meta. Hence a
    # weight-less model first, built twice in all.
    model = init_model(
        copy.deepcopy(cfg), None, device='cpu', cfg_options=cfg_options)
    check_checkpoint_matches(model, state.get('state_dict', state), checkpoint,
                             config)
    return init_model(cfg, checkpoint, device=device, cfg_options=cfg_options)


def collect_images(inputs: Iterable[str]) -> List[str]:
    """Image files from files and folders (sorted, folders not recursed)."""
    found = []
    for item in inputs:
        if osp.isdir(item):
            found += sorted(
                osp.join(item, f) for f in os.listdir(item)
                if f.lower().endswith(IMAGE_EXTENSIONS))
        elif osp.isfile(item):
            found.append(item)
        else:
            raise FileNotFoundError(f'no image or folder at {item!r}')
    if not found:
        raise FileNotFoundError(f'no images ({"/".join(IMAGE_EXTENSIONS)}) '
                                f'in {list(inputs)!r}')
    return found


def read_image(path: str) -> np.ndarray:
    """The image as BGR uint8, or a ValueError naming the file."""
    try:
        img = mmcv.imread(path)
    except Exception as err:  # mmcv raises on some, returns None on others
        raise ValueError(f'cannot read image {path!r}: {err}') from err
    if img is None or img.size == 0:
        raise ValueError(f'cannot read image {path!r}: not an image file')
    return img


def draw_overlays(
        model,
        images: List[str],
        out_dir: str,
        opacity: float = 0.5,
        progress: bool = True) -> Tuple[List[str], List[Tuple[str, str]]]:
    """Segment ``images``; write colour-coded overlays as PNG to ``out_dir``.

    Uses mmseg's ``inference_model`` and ``SegLocalVisualizer`` with the
    class names and palette saved in the checkpoint. An image that cannot
    be read is skipped with a warning naming it; the rest are still drawn.

    Returns:
        The overlays written, and ``(path, reason)`` of each image skipped.
    """
    from mmseg.apis import inference_model
    from mmseg.visualization import SegLocalVisualizer
    from tqdm import tqdm
    if not 0 <= opacity <= 1:
        raise ValueError(f'opacity must be in [0, 1], got {opacity}')
    os.makedirs(out_dir, exist_ok=True)
    visualizer = SegLocalVisualizer(alpha=opacity)
    visualizer.dataset_meta = dict(
        classes=model.dataset_meta['classes'],
        palette=model.dataset_meta['palette'])
    written, skipped = [], []
    for path in tqdm(images, desc='segment', unit='img', disable=not progress):
        try:
            img = read_image(path)
        except ValueError as err:
            warnings.warn(f'skipped: {err}', stacklevel=2)
            skipped.append((path, str(err)))
            continue
        result = inference_model(model, img)
        out_file = osp.join(out_dir,
                            osp.splitext(osp.basename(path))[0] + '.png')
        visualizer.add_datasample(
            osp.basename(path),
            mmcv.bgr2rgb(img),
            data_sample=result,
            draw_gt=False,
            out_file=out_file,
            show=False)
        written.append(out_file)
    return written, skipped
