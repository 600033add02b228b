"""Small, seeded street scenes in the benchmarks' exact on-disk layouts.

Real Cityscapes, ADE20K and PASCAL Context cannot be downloaded here, so tests
and demos use scenes written in the layouts that mmseg's stock
``CityscapesDataset``, ``ADEDataset`` and ``PascalContextDataset59`` load
unmodified.

The scenes are built so that *context matters*: the lower half of every image
is one ground texture, identical in every image, whose label is ``road`` on a
day scene and ``sidewalk`` on a night scene. Day or night is only visible in
the sky band at the top of the image, far from the ground pixels. A model must
carry information across the image to label the ground, which is what a
non-local block is for. Buildings, trees, cars and people are locally
recognisable and give the model easy classes to learn.
"""
import os
import os.path as osp
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import numpy as np
from PIL import Image

# Scene roles and the class name each benchmark uses for them.
ROLES = ('road', 'sidewalk', 'building', 'vegetation', 'sky', 'person', 'car')
_CLASS_NAMES = {
    'cityscapes':
    dict(
        road='road',
        sidewalk='sidewalk',
        building='building',
        vegetation='vegetation',
        sky='sky',
        person='person',
        car='car'),
    'ade20k':
    dict(
        road='road',
        sidewalk='sidewalk',
        building='building',
        vegetation='tree',
        sky='sky',
        person='person',
        car='car'),
    'pascal_context':
    dict(
        road='road',
        sidewalk='sidewalk',
        building='building',
        vegetation='tree',
        sky='sky',
        person='person',
        car='car'),
}
FORMATS = tuple(_CLASS_NAMES)

# Cityscapes trainId -> labelId (cityscapesscripts' labels.py), to write the
# ``_gtFine_labelIds.png`` files that real Cityscapes ships beside trainIds.
CITYSCAPES_TRAINID_TO_LABELID = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24,
                                 25, 26, 27, 28, 31, 32, 33)
_CITIES = {
    'train': ('aachen', 'bochum'),
    'val': ('frankfurt', ),
    'test': ('berlin', )
}

_COLORS = dict(  # RGB
    day_sky=(120, 170, 235),
    night_sky=(20, 24, 60),
    building=(128, 110, 100),
    vegetation=(60, 140, 50),
    person=(220, 60, 70),
    car=(40, 60, 200))


@dataclass(frozen=True)
class Scene:
    """One generated image and its labels as scene roles (see ``ROLES``)."""
    image: np.ndarray  # H x W x 3 uint8, RGB
    roles: np.ndarray  # H x W uint8, index into ROLES
    is_day: Optional[bool] = None  # street scenes: the sky's cue


def make_scene(height: int, width: int, rng: np.random.Generator) -> Scene:
    """Draw one context-dependent street scene."""
    if height < 32 or width < 32:
        raise ValueError(f'image size must be at least 32x32, got '
                         f'{height}x{width}')
    role = {name: i for i, name in enumerate(ROLES)}
    is_day = bool(rng.integers(2))
    img = np.zeros((height, width, 3), np.float32)
    roles = np.zeros((height, width), np.uint8)

    sky_h = height // 5
    horizon = height // 2
    img[:sky_h] = _COLORS['day_sky' if is_day else 'night_sky']
    roles[:sky_h] = role['sky']
    # Between sky and horizon: buildings and trees, in vertical strips.
    x = 0
    while x < width:
        w = int(rng.integers(width // 10, width // 4))
        kind = 'building' if rng.random() < 0.6 else 'vegetation'
        img[sky_h:horizon, x:x + w] = _COLORS[kind]
        roles[sky_h:horizon, x:x + w] = role[kind]
        x += w
    # Ground: one fixed stripe texture whose label depends on the sky.
    yy, xx = np.mgrid[horizon:height, 0:width]
    stripes = 110 + 40 * ((xx + yy) // 4 % 2)
    img[horizon:] = stripes[..., None]
    roles[horizon:] = role['road' if is_day else 'sidewalk']
    # Cars and people on the ground, locally recognisable.
    for kind, (hmin, hmax), (wmin,
                             wmax) in (('car', (0.08, 0.16), (0.12, 0.22)),
                                       ('person', (0.14, 0.22), (0.03, 0.06))):
        for _ in range(int(rng.integers(1, 3))):
            h = max(2, int(height * rng.uniform(hmin, hmax)))
            w = max(2, int(width * rng.uniform(wmin, wmax)))
            y0 = int(rng.integers(horizon, height - h))
            x0 = int(rng.integers(0, width - w))
            img[y0:y0 + h, x0:x0 + w] = _COLORS[kind]
            roles[y0:y0 + h, x0:x0 + w] = role[kind]
    img += rng.normal(0, 8, img.shape)
    return Scene(np.clip(img, 0, 255).astype(np.uint8), roles, is_day)


def label_ids(fmt: str) -> np.ndarray:
    """Map scene roles to the label values stored in ``fmt``'s PNG files.

    Cityscapes stores train ids (0..18). ADE20K and PASCAL Context-59 store
    class index + 1 with 0 meaning "other", which mmseg drops with
    ``reduce_zero_label=True``.
    """
    from mmseg.datasets import (ADE20KDataset, CityscapesDataset,
                                PascalContextDataset59)
    dataset_cls = dict(
        cityscapes=CityscapesDataset,
        ade20k=ADE20KDataset,
        pascal_context=PascalContextDataset59)[fmt]
    classes = dataset_cls.METAINFO['classes']
    shift = 0 if fmt == 'cityscapes' else 1
    return np.array(
        [classes.index(_CLASS_NAMES[fmt][r]) + shift for r in ROLES], np.uint8)


def _save_png(path: str, array: np.ndarray) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path)


def _save_jpg(path: str, array: np.ndarray) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path, quality=95)


def generate(
    fmt: str,
    out_dir: str,
    num_train: int = 16,
    num_val: int = 4,
    height: int = 128,
    width: int = 256,
    seed: int = 0,
    num_test: int = 0,
    draw_scene: Optional[Callable[[np.random.Generator], Scene]] = None
) -> Dict[str, List[str]]:
    """Write a dataset in ``fmt``'s layout below ``out_dir``.

    Args:
        fmt: one of ``FORMATS``.
        out_dir: the dataset root (e.g. ``data/cityscapes``).
        num_train, num_val: images per split. Cityscapes also takes
            ``num_test``: test images come with placeholder labels (all
            unlabeled / 255), as the benchmark ships them.
        height, width: image size in pixels.
        seed: RNG seed; the same arguments write the same files.
        draw_scene: draws one ``Scene`` of ``height`` x ``width`` from the
            RNG it is given; default: the street scenes of ``make_scene``.
            Studies bring their own scenes this way (e.g.
            ``projects/cue_scenes``) and keep the benchmarks' layouts.

    Returns:
        The image ids written, per split.
    """
    if fmt not in FORMATS:
        raise ValueError(f'unknown format {fmt!r}; choose from {FORMATS}')
    for name, n in (('num_train', num_train), ('num_val', num_val),
                    ('num_test', num_test)):
        if n < 0:
            raise ValueError(f'{name} must be >= 0, got {n}')
    if num_test and fmt != 'cityscapes':
        raise ValueError('num_test is only used for the Cityscapes layout')
    if draw_scene is None:

        def draw_scene(rng):
            return make_scene(height, width, rng)

    rng = np.random.default_rng(seed)
    lut = label_ids(fmt)
    writer = dict(
        cityscapes=_write_cityscapes,
        ade20k=_write_ade20k,
        pascal_context=_write_pascal_context)[fmt]
    written = {}
    for split, n in (('train', num_train), ('val', num_val), ('test',
                                                              num_test)):
        if n == 0:
            continue
        scenes = [draw_scene(rng) for _ in range(n)]
        for scene in scenes:  # a study's drawer may not honour the size
            if (scene.image.shape != (height, width, 3)
                    or scene.roles.shape != (height, width)):
                raise ValueError(
                    f'draw_scene returned an image of shape '
                    f'{scene.image.shape} with roles {scene.roles.shape}; '
                    f'expected ({height}, {width}, 3) and ({height}, '
                    f'{width})')
        written[split] = writer(out_dir, split, scenes, lut)
    if fmt == 'pascal_context':
        sets = osp.join(out_dir, 'VOC2010', 'ImageSets', 'SegmentationContext')
        os.makedirs(sets, exist_ok=True)
        for split, ids in written.items():
            with open(osp.join(sets, f'{split}.txt'), 'w') as f:
                f.write(''.join(i + '\n' for i in ids))
    return written


def _write_cityscapes(root: str, split: str, scenes: List[Scene],
                      lut: np.ndarray) -> List[str]:
    ids = []
    cities = _CITIES[split]
    to_label_id = np.array(CITYSCAPES_TRAINID_TO_LABELID, np.uint8)
    for i, scene in enumerate(scenes):
        city = cities[i % len(cities)]
        stem = f'{city}_{i:06d}_000019'
        ids.append(f'{city}/{stem}')
        _save_png(
            osp.join(root, 'leftImg8bit', split, city,
                     f'{stem}_leftImg8bit.png'), scene.image)
        # Cityscapes ships placeholder test labels (all "unlabeled"): the
        # real test scores come from the benchmark server only.
        train_ids = (
            np.full(scene.roles.shape, 255, np.uint8)
            if split == 'test' else lut[scene.roles])
        gt = osp.join(root, 'gtFine', split, city, f'{stem}_gtFine_')
        _save_png(gt + 'labelTrainIds.png', train_ids)
        _save_png(
            gt + 'labelIds.png',
            np.where(train_ids == 255, 0,
                     to_label_id[np.minimum(train_ids, 18)]))
    return ids


def _write_ade20k(root: str, split: str, scenes: List[Scene],
                  lut: np.ndarray) -> List[str]:
    base = osp.join(root, 'ADEChallengeData2016')
    folder = dict(train='training', val='validation')[split]
    ids = []
    for i, scene in enumerate(scenes):
        stem = f'ADE_{"train" if split == "train" else "val"}_{i + 1:08d}'
        ids.append(stem)
        _save_jpg(osp.join(base, 'images', folder, stem + '.jpg'), scene.image)
        _save_png(
            osp.join(base, 'annotations', folder, stem + '.png'),
            lut[scene.roles])
    return ids


def _write_pascal_context(root: str, split: str, scenes: List[Scene],
                          lut: np.ndarray) -> List[str]:
    base = osp.join(root, 'VOC2010')
    year_offset = dict(train=0, val=500000)[split]
    ids = []
    for i, scene in enumerate(scenes):
        stem = f'2008_{year_offset + i:06d}'
        ids.append(stem)
        _save_jpg(osp.join(base, 'JPEGImages', stem + '.jpg'), scene.image)
        _save_png(
            osp.join(base, 'SegmentationClassContext', stem + '.png'),
            lut[scene.roles])
    return ids
