"""An interactive page of where the SNL block samples: one HTML file.

Everything is inlined (the image, the segmentation overlay, every feature
pixel's K learned points and weights): the page needs no server and no
network. Hovering a pixel shows its sampling points, sized and shaded by
attention weight, and the initial grid; a click pins it; a checkbox
toggles the overlay. The page's script is in ``explorer.html``.
"""
import base64
import html
import io
import json
import os.path as osp
import re

import numpy as np

from .sampling import sampling_field

TEMPLATE = osp.join(osp.dirname(__file__), 'explorer.html')


def _png(rgb: np.ndarray) -> str:
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format='PNG', optimize=True)
    return base64.b64encode(buffer.getvalue()).decode('ascii')


def segmentation_rgb(result, palette) -> np.ndarray:
    """The predicted classes coloured by the dataset's palette."""
    labels = result.pred_sem_seg.data[0].cpu().numpy()
    colours = np.asarray(palette, dtype=np.uint8)
    return colours[np.clip(labels, 0, len(colours) - 1)]


def explorer_page(model,
                  image: np.ndarray,
                  title: str = '',
                  opacity: float = 0.5,
                  display_width: int = 1024) -> str:
    """The page for ``image`` (BGR), as an HTML string."""
    if not 0 <= opacity <= 1:
        raise ValueError(f'opacity must be in [0, 1], got {opacity}')
    field = sampling_field(model, image)
    h, w = field.image_size
    feat_h, feat_w, K = field.weights.shape
    data = dict(
        height=h,
        width=w,
        feat_h=feat_h,
        feat_w=feat_w,
        K=K,
        stride=[round(float(s), 6) for s in field.stride],
        grid=field.grid.astype(int).tolist(),
        # flat [feat_h, feat_w, K, (y, x)] and [feat_h, feat_w, K]
        points=np.round(field.points, 2).reshape(-1).tolist(),
        weights=np.round(field.weights, 5).reshape(-1).tolist())
    # shown at display_width, unless already between half and all of it
    scale = 1.0 if display_width / 2 <= w <= display_width else \
        display_width / w
    with open(TEMPLATE) as f:
        page = f.read()
    overlay = segmentation_rgb(field.result, model.dataset_meta['palette'])
    replacements = {
        # a file name is text, never markup: '<img onerror=...>.png'
        '__TITLE__': html.escape(title or 'SSANet'),
        '__W__': str(w),
        '__H__': str(h),
        '__DISPLAY_W__': str(round(w * scale)),
        '__DISPLAY_H__': str(round(h * scale)),
        '__OPACITY__': str(opacity),
        '__STRIDE__': f'{field.stride[0]:.3g} x {field.stride[1]:.3g}',
        '__IMAGE__': _png(np.ascontiguousarray(image[..., ::-1])),
        '__OVERLAY__': _png(overlay),
        # inside <script>: no '</' may appear in the JSON
        '__DATA__': json.dumps(data,
                               separators=(',', ':')).replace('</', '<\\/'),
    }
    # one pass: a value that contains a placeholder ('__W__.png') stays
    return re.sub('|'.join(map(re.escape, replacements)),
                  lambda m: replacements[m.group(0)], page)
