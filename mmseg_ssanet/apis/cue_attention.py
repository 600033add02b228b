"""Does the SNL block look at the right place? Scored on cue scenes.

On scenes of ``tools/generate_data.py --variant cues`` every target's label
is decided by its own cue (``mmseg_ssanet/datasets/paired_cues.py``). For a
query at a target's centre, the share of the block's attention that lands
on that cue is a direct measure of "learning where to look"; the initial
grid's share of points on the cue (what uniform weights would give) is its
untrained reference.
"""
import glob
import os.path as osp
from typing import List, Tuple

import numpy as np

from ..datasets.paired_cues import (CUE_SIZE, TARGET_SIZE, CuePair,
                                    pairs_from_labels)
from .sampling import sampling_points_for, weight_inside


def read_cue_scene(image_file: str, label_file: str
                   ) -> Tuple[np.ndarray, List[CuePair]]:
    """A cue scene from disk (Cityscapes layout): BGR image and its pairs."""
    from mmseg.datasets import CityscapesDataset
    from PIL import Image
    image = np.array(Image.open(image_file).convert('RGB'))
    labels = np.array(Image.open(label_file))
    if labels.shape != image.shape[:2]:
        raise ValueError(f'{label_file} is not a label map of the image: '
                         f'shape {labels.shape}, image {image.shape[:2]}')
    pairs = pairs_from_labels(image, labels,
                              CityscapesDataset.METAINFO['classes'])
    if not pairs:
        raise ValueError(f'{label_file} holds no target/cue pairs (is it '
                         f'from generate_data.py --variant cues?)')
    return np.ascontiguousarray(image[..., ::-1]), pairs


def cue_box(pair: CuePair) -> Tuple[int, int, int, int]:
    return (*pair.cue, CUE_SIZE, CUE_SIZE)


def attention_on_cues(model, image: np.ndarray, pairs: List[CuePair]
                      ) -> List[dict]:
    """For a query at each target's centre: its sampling points
    (``sample``), the attention weight on its own cue (``learned``) and the
    initial grid's share of points on it (``initial``). A point within half
    a feature pixel of the cue counts: bilinear sampling reads it there."""
    queries = [(p.target[0] + TARGET_SIZE // 2, p.target[1] + TARGET_SIZE // 2)
               for p in pairs]
    out = []
    for pair, sample in zip(pairs, sampling_points_for(model, image,
                                                       queries)):
        learned, initial = weight_inside(sample, cue_box(pair),
                                         sample['stride'] / 2)
        out.append(dict(pair=pair, sample=sample, learned=learned,
                        initial=initial))
    return out


def cue_attention_over(model, data_root: str, split: str = 'val') -> dict:
    """Mean attention on the own cue over a cue dataset's split."""
    labels = sorted(glob.glob(osp.join(data_root, 'gtFine', split, '*',
                                       '*_gtFine_labelTrainIds.png')))
    if not labels:
        raise FileNotFoundError(f'no Cityscapes {split} labels under '
                                f'{data_root}')
    scores = []
    for label in labels:
        image = label.replace(osp.join('gtFine', split), osp.join(
            'leftImg8bit', split)).replace('_gtFine_labelTrainIds',
                                           '_leftImg8bit')
        scores += [(s['learned'], s['initial']) for s in attention_on_cues(
            model, *read_cue_scene(image, label))]
    learned, initial = np.mean(scores, 0)
    return dict(learned=float(learned), initial=float(initial),
                num_pairs=len(scores))
