"""Does the attention block look at the right place? Scored on cue scenes.

On cue scenes (``tools/generate_cue_data.py``) every target's label
is decided by its own cue (``paired_cues.py``). For a
query at a target's centre, the share of the block's attention that lands
on that cue is a direct measure of "learning where to look". Its untrained
reference is what uniform weights would give: for the sparse block (SNL)
the initial grid's share of points on the cue, for a dense non-local block
(mmcv's ``NonLocal2d``, as in mmseg's ``NLHead``) the cue's share of all
feature pixels.
"""
import glob
import os.path as osp
from contextlib import contextmanager
from typing import List, Tuple

import numpy as np

from mmseg_ssanet.apis.sampling import (QuerySamples, feature_pixel,
                                        sampling_points_for)
from .paired_cues import CUE_SIZE, TARGET_SIZE, CuePair, pairs_from_labels


def read_cue_scene(image_file: str,
                   label_file: str) -> Tuple[np.ndarray, List[CuePair]]:
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
                         f'from tools/generate_cue_data.py?)')
    return np.ascontiguousarray(image[..., ::-1]), pairs


def cue_box(pair: CuePair) -> Tuple[int, int, int, int]:
    return (*pair.cue, CUE_SIZE, CUE_SIZE)


def weight_inside(sample: QuerySamples,
                  box: Tuple[int, int, int, int],
                  margin: float = 0.0) -> Tuple[float, float]:
    """Attention mass that ``sample``'s query puts inside ``box``.

    ``box`` is (y0, x0, h, w) in image pixels, grown by ``margin`` on each
    side. Returns the learned points' weight inside it and, for comparison,
    the share of the initial grid's points inside it (uniform weights: the
    untrained block).
    """
    y0, x0, h, w = box

    def inside(pts):
        return ((pts[:, 0] >= y0 - margin) & (pts[:, 0] < y0 + h + margin) &
                (pts[:, 1] >= x0 - margin) & (pts[:, 1] < x0 + w + margin))

    weights = sample.weights / max(sample.weights.sum(), 1e-12)
    return (float(weights[inside(sample.points)].sum()),
            float(inside(sample.initial).mean()))


def attention_on_cues(model, image: np.ndarray,
                      pairs: List[CuePair]) -> List[dict]:
    """For a query at each target's centre: its sampling points
    (``sample``), the attention weight on its own cue (``learned``) and the
    initial grid's share of points on it (``initial``). A point within half
    a feature pixel of the cue counts: bilinear sampling reads it there."""
    queries = [(p.target[0] + TARGET_SIZE // 2, p.target[1] + TARGET_SIZE // 2)
               for p in pairs]
    out = []
    for pair, sample in zip(pairs, sampling_points_for(model, image, queries)):
        learned, initial = weight_inside(sample, cue_box(pair),
                                         sample.stride[0] / 2)
        out.append(
            dict(pair=pair, sample=sample, learned=learned, initial=initial))
    return out


@contextmanager
def recorded_dense_attention(block):
    """Record the ``[N, HW, HW]`` attention maps a dense ``NonLocal2d``
    computes while the context is open (mmcv does not return them)."""
    if block.mode not in ('embedded_gaussian', 'gaussian', 'dot_product',
                          'concatenation'):
        raise ValueError(f'unknown NonLocal2d mode {block.mode!r}')
    pairwise = getattr(block, block.mode)
    maps = []

    def recording(*args):
        weight = pairwise(*args)
        maps.append(weight.detach())
        return weight

    setattr(block, block.mode, recording)  # shadows the bound method
    try:
        yield maps
    finally:
        delattr(block, block.mode)


def find_attention_block(model):
    """The model's SNL block, else its dense non-local block."""
    from mmcv.cnn import NonLocal2d

    from mmseg_ssanet.models import SparseNonLocal2d
    for kind in (SparseNonLocal2d, NonLocal2d):
        blocks = [m for m in model.modules() if isinstance(m, kind)]
        if blocks:
            return blocks[0]
    raise ValueError('the model has neither a SparseNonLocal2d nor a '
                     'NonLocal2d block: nothing attends')


def dense_attention_on_cues(model, image: np.ndarray,
                            pairs: List[CuePair]) -> List[dict]:
    """As :func:`attention_on_cues`, for a model with a dense non-local
    block: for a query at each target's centre, the attention weight on the
    feature pixels whose centre lies within half a feature pixel of its own
    cue (``learned``) and their share of all feature pixels (``initial``:
    uniform attention)."""
    from mmcv.cnn import NonLocal2d
    from mmseg.apis import inference_model
    if model.test_cfg.get('mode', 'whole') != 'whole':
        raise ValueError("dense attention needs whole-image inference: load "
                         "the model with cfg_options "
                         "{'model.test_cfg.mode': 'whole'}")
    block = find_attention_block(model)
    if not isinstance(block, NonLocal2d):
        raise ValueError(f'the model attends with a {type(block).__name__}, '
                         f'not a dense NonLocal2d: use attention_on_cues')
    shapes = []
    hook = block.register_forward_hook(
        lambda module, args, output: shapes.append(args[0].shape[2:]))
    try:
        with recorded_dense_attention(block) as maps:
            inference_model(model, image)
    finally:
        hook.remove()
    weight = maps[0][0].cpu().numpy()  # [HW, HW], rows are queries
    feat_h, feat_w = shapes[0]
    if weight.shape[0] != feat_h * feat_w:
        raise ValueError(f'the attention map covers {weight.shape[0]} '
                         f'pixels, not the {feat_h}x{feat_w} input (is '
                         f'sub_sample on?)')
    height, width = image.shape[:2]
    sy, sx = height / feat_h, width / feat_w
    cy = (np.arange(feat_h) + 0.5) * sy - 0.5
    cx = (np.arange(feat_w) + 0.5) * sx - 0.5
    out = []
    for pair in pairs:
        y0, x0, h, w = cue_box(pair)
        on_cue = np.outer((cy >= y0 - sy / 2) & (cy < y0 + h + sy / 2),
                          (cx >= x0 - sx / 2) & (cx < x0 + w + sx / 2))
        qy, qx = feature_pixel(pair.target[0] + TARGET_SIZE / 2,
                               pair.target[1] + TARGET_SIZE / 2, (sy, sx),
                               (feat_h, feat_w))
        row = weight[qy * feat_w + qx]
        out.append(
            dict(
                pair=pair,
                learned=float(row[on_cue.ravel()].sum()),
                initial=float(on_cue.mean())))
    return out


def feature_similarity(
        features: np.ndarray, pairs: List[CuePair],
        image_size: Tuple[int, int]) -> List[Tuple[float, float]]:
    """Can the block's input tell a target's own cue from the others?

    ``features`` ``[C, h, w]`` is the attention block's input for an image
    of ``image_size``. For each target: the cosine similarity of the
    feature pixel at its centre with the one at its own cue's centre, and
    the mean over the other cues. Content-based attention (dense NL) can
    only prefer the own cue if the first is the larger.
    """
    shape = features.shape[1:]
    stride = tuple(size / n for size, n in zip(image_size, shape))
    unit = features / np.maximum(np.linalg.norm(features, axis=0), 1e-12)

    def at(top_left, size):
        fy, fx = feature_pixel(top_left[0] + size / 2, top_left[1] + size / 2,
                               stride, shape)
        return unit[:, fy, fx]

    cues = [at(p.cue, CUE_SIZE) for p in pairs]
    out = []
    for i, pair in enumerate(pairs):
        sims = [float(at(pair.target, TARGET_SIZE) @ c) for c in cues]
        others = sims[:i] + sims[i + 1:]
        out.append((sims[i], float(np.mean(others)) if others else np.nan))
    return out


def cue_attention_over(model, data_root: str, split: str = 'val') -> dict:
    """Mean attention on the own cue over a cue dataset's split, for a
    model with an SNL block or a dense non-local block; with the cosine
    similarity of the block's input features at a target and at its own
    cue (``similarity_own``) or another cue (``similarity_other``)."""
    from mmseg_ssanet.models import SparseNonLocal2d
    block = find_attention_block(model)
    measure = (
        attention_on_cues
        if isinstance(block, SparseNonLocal2d) else dense_attention_on_cues)
    inputs = []
    hook = block.register_forward_hook(
        lambda module, args, output: inputs.append(args[0][0].detach()))
    labels = sorted(
        glob.glob(
            osp.join(data_root, 'gtFine', split, '*',
                     '*_gtFine_labelTrainIds.png')))
    if not labels:
        raise FileNotFoundError(f'no Cityscapes {split} labels under '
                                f'{data_root}')
    scores, similarity = [], []
    try:
        for label in labels:
            image, pairs = read_cue_scene(
                label.replace(
                    osp.join('gtFine', split),
                    osp.join('leftImg8bit',
                             split)).replace('_gtFine_labelTrainIds',
                                             '_leftImg8bit'), label)
            inputs.clear()
            scores += [(s['learned'], s['initial'])
                       for s in measure(model, image, pairs)]
            similarity += feature_similarity(inputs[0].cpu().numpy(), pairs,
                                             image.shape[:2])
    finally:
        hook.remove()
    learned, initial = np.mean(scores, 0)
    own, other = np.nanmean(similarity, 0)
    return dict(
        learned=float(learned),
        initial=float(initial),
        num_pairs=len(scores),
        similarity_own=float(own),
        similarity_other=float(other))
