"""The picture that explains SSANet: where each query pixel samples.

For chosen query pixels, the K learned sampling locations of the model's
sparse non-local block (eq. 4), sized and coloured by their attention
weight (eq. 6), beside the regular initial grid they started from.
"""
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..models import SparseNonLocal2d
from ..ops import initial_grid


def parse_point(text: str) -> Tuple[int, int]:
    """``'y,x'`` -> (y, x): the command-line form of an image pixel."""
    import argparse
    try:
        y, x = (int(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(f'a point is y,x, got {text!r}')
    return y, x


def find_snl_block(model) -> SparseNonLocal2d:
    blocks = [m for m in model.modules() if isinstance(m, SparseNonLocal2d)]
    if not blocks:
        raise ValueError('the model has no SparseNonLocal2d block (is its '
                         'decode head an SNLHead with with_snl=True?)')
    return blocks[0]


def default_queries(height: int,
                    width: int,
                    grid: int = 3) -> List[Tuple[int, int]]:
    """A grid x grid set of query pixels, away from the borders."""
    ys = np.linspace(0, height, grid + 2)[1:-1]
    xs = np.linspace(0, width, grid + 2)[1:-1]
    return [(int(y), int(x)) for y in ys for x in xs]


def feature_pixel(y: float, x: float, stride: Tuple[float, float],
                  shape: Tuple[int, int]) -> Tuple[int, int]:
    """The feature pixel (fy, fx) that image pixel (y, x) falls in, for a
    feature map of ``shape`` at ``stride`` image pixels per feature pixel
    (y, x); the last row and column take what the stride rounds off."""
    return (min(int(y / stride[0]),
                shape[0] - 1), min(int(x / stride[1]), shape[1] - 1))


@dataclass(frozen=True)
class SamplingField:
    """Where every query pixel of the SNL block's feature map samples.

    Args:
        result: the segmentation (mmseg's ``SegDataSample``).
        image_size: (height, width) of the image.
        stride: (sy, sx), image pixels per feature pixel.
        grid: ``[K, 2]``, the initial (dy, dx) in feature pixels.
        points: ``[Hf, Wf, K, 2]``, the learned points, image (y, x).
        initial: ``[Hf, Wf, K, 2]``, the regular grid, image (y, x).
        weights: ``[Hf, Wf, K]``, the attention weights.
    """
    result: Any
    image_size: Tuple[int, int]
    stride: Tuple[float, float]
    grid: np.ndarray
    points: np.ndarray
    initial: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class QuerySamples:
    """The sampling points of one query pixel.

    Args:
        query: (y, x) in image pixels.
        feature_pixel: (fy, fx), the feature pixel it falls in.
        stride: (sy, sx), image pixels per feature pixel.
        points, initial: ``[K, 2]`` image (y, x): learned, initial grid.
        weights: ``[K]``, the attention weights.
    """
    query: Tuple[int, int]
    feature_pixel: Tuple[int, int]
    stride: Tuple[float, float]
    points: np.ndarray
    initial: np.ndarray
    weights: np.ndarray


def sampling_field(model, image: np.ndarray) -> SamplingField:
    """Run ``model`` on ``image`` (BGR) once; where every query samples.

    Needs whole-image inference, so that the block sees the whole image
    once.
    """
    from mmseg.apis import inference_model
    if model.test_cfg.get('mode', 'whole') != 'whole':
        raise ValueError("sampling points need whole-image inference: load "
                         "the model with cfg_options "
                         "{'model.test_cfg.mode': 'whole'}")
    block = find_snl_block(model)
    captured = []
    handle = block.register_forward_hook(
        lambda module, args, output: captured.append(args[0].detach()))
    try:
        result = inference_model(model, image)
    finally:
        handle.remove()
    x = captured[0][:1]
    t_y, t_x, weight = (t[0] for t in block.sampling_points(x))  # [K, h, w]
    feat_h, feat_w = x.shape[2:]
    ori_h, ori_w = result.metainfo['ori_shape']
    # feature pixel centre -> image pixel (the input is resized, not padded)
    sy, sx = ori_h / feat_h, ori_w / feat_w

    def to_image(fy, fx):
        return torch.stack([(fy + 0.5) * sy - 0.5, (fx + 0.5) * sx - 0.5], -1)

    dy, dx = initial_grid(block.kernel_size, block.dilation)
    ys = torch.arange(feat_h, dtype=dy.dtype).view(-1, 1, 1)
    xs = torch.arange(feat_w, dtype=dx.dtype).view(1, -1, 1)
    return SamplingField(
        result=result,
        stride=(sy, sx),
        image_size=(ori_h, ori_w),
        grid=torch.stack([dy, dx], -1).numpy(),
        points=to_image(t_y.permute(1, 2, 0), t_x.permute(1, 2, 0)).numpy(),
        initial=to_image((ys + dy.view(1, 1, -1)).expand(feat_h, feat_w, -1),
                         (xs + dx.view(1, 1, -1)).expand(feat_h, feat_w,
                                                         -1)).numpy(),
        weights=weight.permute(1, 2, 0).numpy())


def sampling_points_for(model,
                        image: np.ndarray,
                        queries: Optional[Sequence[Tuple[int, int]]] = None,
                        grid: int = 3) -> List[QuerySamples]:
    """Run ``model`` on ``image`` (BGR); sampling points per query pixel.

    Queries are (y, x) in image pixels; None: a ``grid`` x ``grid`` set.
    """
    field = sampling_field(model, image)
    ori_h, ori_w = field.image_size
    feat_h, feat_w = field.weights.shape[:2]
    if queries is None:
        queries = default_queries(ori_h, ori_w, grid)
    out = []
    for qy, qx in queries:
        if not (0 <= qy < ori_h and 0 <= qx < ori_w):
            raise ValueError(f'query ({qy}, {qx}) is outside the '
                             f'{ori_h}x{ori_w} image')
        fy, fx = feature_pixel(qy, qx, field.stride, (feat_h, feat_w))
        out.append(
            QuerySamples(
                query=(qy, qx),
                feature_pixel=(fy, fx),
                stride=field.stride,
                points=field.points[fy, fx],
                initial=field.initial[fy, fx],
                weights=field.weights[fy, fx]))
    return out


def draw_sampling_points(
    image: np.ndarray,
    samples: List[QuerySamples],
    out_file: str,
    title: str = '',
    marks: Sequence[Tuple[Tuple[int, int, int, int], str, Optional[int]]] = ()
) -> None:
    """Two panels: learned points (by weight) and the initial grids.

    ``marks`` are boxes (y0, x0, h, w) in image pixels with a label and the
    index of the sample they belong to (drawn in its colour; None: yellow),
    on both panels (e.g. the cue each query needs).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rgb = image[..., ::-1]
    h, w = rgb.shape[:2]
    fig, axes = plt.subplots(1, 2, figsize=(12, 12 * h / w / 2 + 1.2))
    colors = plt.cm.tab10(np.arange(len(samples)) % 10)
    for ax, key, name in ((axes[0], 'points', 'learned sampling points '
                           '(size, opacity: attention weight)'),
                          (axes[1], 'initial', 'initial regular grid')):
        ax.imshow(rgb)
        for s, c in zip(samples, colors):
            pts = getattr(s, key)
            if key == 'points':
                wts = s.weights / max(s.weights.max(), 1e-12)
                rgba = np.tile(c, (len(pts), 1))
                rgba[:, 3] = 0.25 + 0.75 * wts
                ax.scatter(
                    pts[:, 1],
                    pts[:, 0],
                    s=8 + 120 * wts,
                    c=rgba,
                    edgecolors='none')
            else:
                ax.scatter(
                    pts[:, 1],
                    pts[:, 0],
                    s=10,
                    facecolors='none',
                    edgecolors=[c])
            ax.scatter([s.query[1]], [s.query[0]],
                       marker='*',
                       s=160,
                       c=[c],
                       edgecolors='white',
                       linewidths=0.8)
        for (y0, x0, bh, bw), label, owner in marks:
            c = 'yellow' if owner is None else colors[owner]
            ax.add_patch(
                plt.Rectangle((x0 - 0.5, y0 - 0.5),
                              bw,
                              bh,
                              fill=False,
                              ec=c,
                              lw=2,
                              ls='--'))
            ax.text(
                x0 - 0.5,
                y0 - 2,
                label,
                color=c,
                fontsize=7,
                fontweight='bold')
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
        ax.set_title(name, fontsize=9)
        ax.axis('off')
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(out_file, dpi=110)
    plt.close(fig)
