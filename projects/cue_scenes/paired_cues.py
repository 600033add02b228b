"""Scenes whose labels depend on a distant, *local* cue.

The street scenes of ``mmseg_ssanet/datasets/synthetic.py`` carry one
image-global cue (day or night sky), which any network with a wide enough
receptive field or a global pooling branch can read. Here every image
holds several *targets*, plain squares of one colour, and each target has
its own *cue* somewhere else:

* a target's class (``car`` or ``person`` in the benchmark's label set) is
  decided only by its cue's centre, white or black. The cues themselves are
  locally recognisable and labelled (``building`` for white, ``vegetation``
  for black), so the network learns to see them without context; carrying
  a cue's class to its target is what needs context;
* a target and its cue share a hue, unique within the image, so a model can
  tell which cue belongs to which target by content (what dense non-local
  attention needs) and each cue sits at a fixed-range distance from its
  target in a random direction (what a local sampling grid can reach);
* every image with two or more targets has both classes, so pooling over the
  whole image cannot decide them.

Roles (see ``mmseg_ssanet.datasets.synthetic.ROLES``): background
``road``; cues ``building`` (white centre) and ``vegetation`` (black
centre); the two context classes ``car`` (white cue) and ``person`` (black
cue).

Cue labels (``cue_labels``): with ``'centre'`` (the default) a cue's label
names only its centre, so nothing asks the backbone to keep the hue, the
link a dense non-local block must match query to key on (measured: after
3000 iterations a target's feature is as similar to other cues as to its
own). With ``'hue'`` there are two fixed hues, at most two pairs per image,
and a cue's label names its hue and its centre (``HUE_CUE_ROLES``), so the
hue is a locally learnt feature at both ends of the link; the targets are
labelled as before, by their cue's centre only.
Distances are measured centre to centre in image pixels; at output stride 16
one feature pixel is 16 image pixels.
"""
from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np

from mmseg_ssanet.datasets import synthetic

# Hues, one per target/cue pair of an image (RGB, mid brightness so a white
# or black cue centre stands out).
PAIR_HUES = ((200, 60, 60), (60, 170, 60), (70, 90, 220), (200, 180, 40),
             (180, 60, 190), (40, 170, 180))
CUE_CLASSES = ('car', 'person')  # white centre -> car, black -> person
CUE_ROLES = dict(car='building', person='vegetation')  # the cues' own labels
TARGET_SIZE = 32  # px: 2 feature pixels at output stride 16
CUE_SIZE = 24  # px, with a CUE_SIZE // 2 white or black centre
DEFAULT_DISTANCE = (64, 112)  # px, centre to centre
CUE_LABELS = ('centre', 'hue')
# cue_labels='hue': two hues far apart (red, blue), and the cue's role per
# (hue, centre)
LABELLED_HUES = (PAIR_HUES[0], PAIR_HUES[2])
HUE_CUE_ROLES = (CUE_ROLES, dict(car='sky', person='sidewalk'))
ALL_CUE_ROLES = tuple(
    dict.fromkeys(role for roles in HUE_CUE_ROLES for role in roles.values()))
_GAP = 8  # px kept free between any two squares


@dataclass(frozen=True)
class CuePair:
    """One target and its cue, in image pixels."""
    target: Tuple[int, int]  # top-left (y, x) of the TARGET_SIZE square
    cue: Tuple[int, int]  # top-left (y, x) of the CUE_SIZE square
    role: str  # the target's role: one of CUE_CLASSES
    distance: float  # centre to centre


def check_distance(distance, height: int, width: int) -> Tuple[int, int]:
    """Validate a (min, max) cue distance for an image of this size."""
    try:
        lo, hi = (int(d) for d in distance)
    except (TypeError, ValueError):
        raise ValueError(f'cue distance must be (min, max) pixels, got '
                         f'{distance!r}')
    closest = (TARGET_SIZE + CUE_SIZE) // 2 + _GAP  # squares must not touch
    farthest = max(height, width) - (TARGET_SIZE + CUE_SIZE) // 2
    if not closest <= lo <= hi <= farthest:
        raise ValueError(f'cue distance must satisfy {closest} <= min <= max '
                         f'<= {farthest} px for a {height}x{width} image, '
                         f'got {lo}..{hi}')
    return lo, hi


def _overlaps(box, boxes) -> bool:
    y, x, s = box
    return any(y < by + bs + _GAP and by < y + s + _GAP and x < bx + bs +
               _GAP and bx < x + s + _GAP for by, bx, bs in boxes)


def place_pairs(height: int, width: int, rng: np.random.Generator,
                num_pairs: int, distance: Tuple[int, int]) -> List[CuePair]:
    """Place up to ``num_pairs`` non-overlapping target/cue pairs."""
    lo, hi = distance
    boxes, pairs = [], []
    # Both classes in every image with two or more targets.
    first_two = [CUE_CLASSES[j] for j in rng.permutation(2)]
    for i in range(num_pairs):
        for _ in range(200):
            ty = int(rng.integers(0, height - TARGET_SIZE + 1))
            tx = int(rng.integers(0, width - TARGET_SIZE + 1))
            d = rng.uniform(lo, hi)
            angle = rng.uniform(0, 2 * np.pi)
            cy = round(ty + (TARGET_SIZE - CUE_SIZE) / 2 + d * np.sin(angle))
            cx = round(tx + (TARGET_SIZE - CUE_SIZE) / 2 + d * np.cos(angle))
            if not (0 <= cy <= height - CUE_SIZE
                    and 0 <= cx <= width - CUE_SIZE):
                continue
            target, cue = (ty, tx, TARGET_SIZE), (cy, cx, CUE_SIZE)
            if _overlaps(target, boxes) or _overlaps(cue, boxes + [target]):
                continue
            boxes += [target, cue]
            role = first_two[i] if i < 2 else CUE_CLASSES[int(rng.integers(2))]
            pairs.append(CuePair((ty, tx), (cy, cx), role, float(d)))
            break
    return pairs


def _palette(cue_labels: str):
    """The hues a scene draws its pairs from and, per hue, the cues' roles
    (by the target's class)."""
    if cue_labels == 'centre':
        return PAIR_HUES, (CUE_ROLES, ) * len(PAIR_HUES)
    return LABELLED_HUES, HUE_CUE_ROLES


def check_cue_labels(cue_labels: str, num_pairs: int) -> None:
    if cue_labels not in CUE_LABELS:
        raise ValueError(f'cue_labels must be one of {CUE_LABELS}, got '
                         f'{cue_labels!r}')
    hues, _ = _palette(cue_labels)
    if not 1 <= num_pairs <= len(hues):
        raise ValueError(f'num_pairs must be in 1..{len(hues)} (one hue per '
                         f'pair) with cue_labels={cue_labels!r}, got '
                         f'{num_pairs}')


def draw_pairs(height: int,
               width: int,
               rng: np.random.Generator,
               pairs: List[CuePair],
               role_index: dict,
               cue_labels: str = 'centre') -> Tuple[np.ndarray, np.ndarray]:
    """Render the pairs on a noisy grey background: image (float) and roles.
    """
    check_cue_labels(cue_labels, len(pairs))
    img = np.empty((height, width, 3), np.float32)
    img[:] = rng.uniform(90, 140)
    roles = np.full((height, width), role_index['road'], np.uint8)
    palette, cue_roles = _palette(cue_labels)
    hues = rng.permutation(len(palette))
    h = CUE_SIZE // 4  # the centre's margin inside the cue
    for pair, hue in zip(pairs, hues):
        (ty, tx), (cy, cx) = pair.target, pair.cue
        cue_role = cue_roles[hue][pair.role]
        img[ty:ty + TARGET_SIZE, tx:tx + TARGET_SIZE] = palette[hue]
        roles[ty:ty + TARGET_SIZE, tx:tx + TARGET_SIZE] = role_index[pair.role]
        img[cy:cy + CUE_SIZE, cx:cx + CUE_SIZE] = palette[hue]
        img[cy + h:cy + CUE_SIZE - h, cx + h:cx + CUE_SIZE -
            h] = (255 if pair.role == CUE_CLASSES[0] else 0)
        roles[cy:cy + CUE_SIZE, cx:cx + CUE_SIZE] = role_index[cue_role]
    img += rng.normal(0, 8, img.shape)
    return img, roles


def pairs_from_labels(image: np.ndarray, labels: np.ndarray,
                      class_names: Tuple[str, ...]) -> List[CuePair]:
    """Recover the target/cue pairs of a written scene from its files.

    ``image`` is RGB, ``labels`` the class indices of ``class_names`` (e.g.
    Cityscapes train ids). Each target is paired with the cue whose rim
    has the closest colour (pairs share a hue).
    """
    from scipy import ndimage

    def boxes(names):
        ids = [class_names.index(n) for n in names]
        found, _ = ndimage.label(np.isin(labels, ids))
        return [(s, class_names[labels[s][0, 0]])
                for s in ndimage.find_objects(found)]

    def colour(region):
        return region.reshape(-1, 3).astype(float).mean(0)

    cues = boxes(ALL_CUE_ROLES)
    if not cues:
        return []
    cue_colours = [colour(image[s][:2]) for s, _ in cues]  # top rim rows
    pairs = []
    for s, role in boxes(CUE_CLASSES):
        j = int(
            np.argmin(
                [np.abs(colour(image[s]) - c).sum() for c in cue_colours]))
        cue = cues[j][0]
        t0 = np.array([s[0].start, s[1].start])
        c0 = np.array([cue[0].start, cue[1].start])
        d = np.hypot(*(t0 + TARGET_SIZE / 2 - c0 - CUE_SIZE / 2))
        pairs.append(
            CuePair(
                tuple(int(v) for v in t0), tuple(int(v) for v in c0), role,
                float(d)))
    return pairs


def share_within_grid(pairs: List[CuePair],
                      kernel_size: Tuple[int, int],
                      dilation: int = 1,
                      stride: int = 16) -> float:
    """Share of cues whose centre the initial sampling grid of a query at
    their target's centre covers (a square of +-(k // 2) * dilation feature
    pixels), at output stride ``stride``."""
    if not pairs:
        raise ValueError('no pairs to measure')
    reach = np.array([(k // 2) * dilation for k in kernel_size])
    offsets = np.array([
        (np.array(p.cue) + CUE_SIZE / 2 - np.array(p.target) - TARGET_SIZE / 2)
        / stride for p in pairs
    ])
    return float((np.abs(offsets) <= reach).all(1).mean())


@dataclass(frozen=True)
class CueScene(synthetic.Scene):
    """A generated cue scene and the target/cue pairs drawn in it."""
    pairs: Tuple[CuePair, ...] = ()


def make_cue_scene(height: int,
                   width: int,
                   rng: np.random.Generator,
                   num_pairs: int = 3,
                   distance: Tuple[int, int] = DEFAULT_DISTANCE,
                   cue_labels: str = 'centre') -> CueScene:
    """Draw targets labelled by distant cues."""
    distance = check_distance(distance, height, width)
    check_cue_labels(cue_labels, num_pairs)
    pairs = place_pairs(height, width, rng, num_pairs, distance)
    if not pairs:
        raise ValueError(f'no target/cue pair at {distance[0]}..'
                         f'{distance[1]} px fits a {height}x{width} image')
    img, roles = draw_pairs(height, width, rng, pairs, {
        name: i
        for i, name in enumerate(synthetic.ROLES)
    }, cue_labels)
    return CueScene(
        np.clip(img, 0, 255).astype(np.uint8), roles, pairs=tuple(pairs))


def generate_cue_scenes(fmt: str,
                        out_dir: str,
                        num_train: int = 16,
                        num_val: int = 4,
                        height: int = 128,
                        width: int = 256,
                        seed: int = 0,
                        num_pairs: int = 3,
                        cue_distance: Tuple[int, int] = DEFAULT_DISTANCE,
                        cue_labels: str = 'centre') -> Dict[str, List[str]]:
    """Write cue scenes in ``fmt``'s layout (``synthetic.generate``'s
    arguments), ``num_pairs`` per image, each cue ``cue_distance`` (min,
    max) pixels from its target; ``cue_labels`` (``'centre'`` or ``'hue'``)
    says what a cue's own label names."""
    make_cue_scene(height, width, np.random.default_rng(0), num_pairs,
                   cue_distance, cue_labels)  # checks before writing
    return synthetic.generate(
        fmt,
        out_dir,
        num_train,
        num_val,
        height,
        width,
        seed,
        draw_scene=lambda rng: make_cue_scene(height, width, rng, num_pairs,
                                              cue_distance, cue_labels))


def preview_cue_scenes(out_file: str,
                       height: int = 128,
                       width: int = 256,
                       seed: int = 0,
                       num_pairs: int = 3,
                       distance: Tuple[int, int] = DEFAULT_DISTANCE,
                       num_scenes: int = 3,
                       cue_labels: str = 'centre') -> None:
    """Draw the first ``num_scenes`` training scenes that
    ``generate_cue_scenes`` writes for these arguments, labels beside them
    and an arrow from every target to its cue."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from mmseg.datasets import CityscapesDataset
    palette = np.array(CityscapesDataset.METAINFO['palette'], np.uint8)
    lut = synthetic.label_ids('cityscapes')
    rng = np.random.default_rng(seed)  # as generate(): train scenes first
    fig, axes = plt.subplots(
        num_scenes, 2, squeeze=False, figsize=(10, 1.2 + 2 * num_scenes))
    t, c = TARGET_SIZE / 2, CUE_SIZE / 2
    for row in axes:
        scene = make_cue_scene(height, width, rng, num_pairs, distance,
                               cue_labels)
        row[0].imshow(scene.image)
        row[1].imshow(palette[lut[scene.roles]])
        for pair in scene.pairs:
            (ty, tx), (cy, cx) = pair.target, pair.cue
            for ax in row:
                ax.annotate(
                    '',
                    xy=(cx + c, cy + c),
                    xytext=(tx + t, ty + t),
                    arrowprops=dict(arrowstyle='->', color='yellow'))
            row[1].text(
                tx + 1, ty + t + 3, pair.role, color='white', fontsize=7)
        for ax in row:
            ax.axis('off')
    axes[0, 0].set_title('image (arrow: target -> its cue)', fontsize=9)
    axes[0, 1].set_title(
        'labels: road, building (white cue), vegetation (black cue), car, '
        'person' if cue_labels == 'centre' else 'labels: road; cues '
        'building/vegetation (red, white/black), sky/sidewalk (blue, '
        'white/black); car, person',
        fontsize=9)
    fig.suptitle(
        f'cue scenes: each target labelled by its own cue, '
        f'{distance[0]}-{distance[1]} px away',
        fontsize=10)
    fig.tight_layout()
    fig.savefig(out_file, dpi=90)
    plt.close(fig)
