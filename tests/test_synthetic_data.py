"""Generated datasets load through mmseg's stock classes and pipelines."""
import filecmp

import numpy as np
import pytest
from mmengine.runner import set_random_seed
from PIL import Image

from mmseg_ssanet.datasets import generate, make_scene
from mmseg_ssanet.datasets.synthetic import ROLES, label_ids
from .conftest import STOCK, stock_dataset


@pytest.mark.parametrize('fmt', sorted(STOCK))
@pytest.mark.parametrize('split', ['train', 'val'])
def test_stock_dataset_loads_generated_data(tmp_path, fmt, split):
    # the train pipeline crops at random: seed it so the test sees the same
    # crops every run (mmseg's transforms draw from numpy's global state)
    set_random_seed(0)
    generate(
        fmt,
        str(tmp_path),
        num_train=3,
        num_val=2,
        height=64,
        width=96,
        seed=1)
    dataset, cfg = stock_dataset(fmt, str(tmp_path), split)
    assert len(dataset) == (3 if split == 'train' else 2)
    shift = 0 if fmt == 'cityscapes' else 1  # reduce_zero_label
    valid = set((label_ids(fmt).astype(int) - shift).tolist()) | {255}
    crop = cfg.crop_size
    for i in range(len(dataset)):
        sample = dataset[i]
        img = sample['inputs']
        gt = sample['data_samples'].gt_sem_seg.data
        assert img.shape[0] == 3 and img.dtype.is_floating_point is False
        if split == 'train':  # resized, then cropped to at most crop_size
            assert gt.shape[1:] == img.shape[1:]
            assert all(s <= c for s, c in zip(img.shape[1:], crop))
            assert max(img.shape[1:]) > 96  # RandomResize scaled it up
        else:  # image resized, labels kept at original size for scoring
            assert tuple(gt.shape[1:]) == (64, 96)
            assert img.shape[1] / img.shape[2] == pytest.approx(
                64 / 96, rel=0.02)
        values = set(gt.unique().tolist())
        assert values <= valid, (values, valid)
        # a real scene, not one class: whole val scenes show at least three;
        # a train crop at least two (RandomCrop's cat_max_ratio=0.75)
        assert len(values - {255}) >= (2 if split == 'train' else 3)
        assert int(gt.max()) <= 255 and int(gt.min()) >= 0
        num_classes = len(dataset.metainfo['classes'])
        assert max(values - {255}) < num_classes


def test_generation_is_deterministic(tmp_path):
    a, b = tmp_path / 'a', tmp_path / 'b'
    generate(
        'cityscapes',
        str(a),
        num_train=2,
        num_val=1,
        height=48,
        width=64,
        seed=7)
    generate(
        'cityscapes',
        str(b),
        num_train=2,
        num_val=1,
        height=48,
        width=64,
        seed=7)
    cmp = filecmp.dircmp(a, b)
    rel = 'gtFine/train/aachen/aachen_000000_000019_gtFine_labelTrainIds.png'
    assert filecmp.cmp(a / rel, b / rel, shallow=False)
    assert not cmp.diff_files
    c = tmp_path / 'c'
    generate(
        'cityscapes',
        str(c),
        num_train=2,
        num_val=1,
        height=48,
        width=64,
        seed=8)
    assert not filecmp.cmp(a / rel, c / rel, shallow=False)


def test_ground_label_needs_the_distant_sky():
    """Same local ground texture, label decided by the sky far above."""
    rng = np.random.default_rng(0)
    scenes = [make_scene(64, 128, rng) for _ in range(12)]
    assert {s.is_day for s in scenes} == {True, False}
    road, sidewalk, sky = (ROLES.index(r) for r in ('road', 'sidewalk', 'sky'))
    for s in scenes:
        ground = s.roles[-1]  # bottom row: ground under cars and people
        expected = road if s.is_day else sidewalk
        assert expected in ground and (sidewalk if s.is_day else road) \
            not in s.roles
        # the cue is only in the sky band, at the top of the image
        assert (s.roles[:5] == sky).all()
    day = next(s for s in scenes if s.is_day)
    night = next(s for s in scenes if not s.is_day)
    both_ground = (day.roles == road) & (night.roles == sidewalk)
    assert both_ground.sum() > 1000
    # Noise aside, the ground looks the same in both: mean abs diff is small.
    diff = np.abs(day.image[both_ground].astype(int) -
                  night.image[both_ground].astype(int)).mean()
    assert diff < 15
    sky_diff = np.abs(day.image[:5].astype(int) -
                      night.image[:5].astype(int)).mean()
    assert sky_diff > 60


def test_cityscapes_label_ids_match_train_ids(tmp_path):
    generate(
        'cityscapes',
        str(tmp_path),
        num_train=1,
        num_val=0,
        height=48,
        width=64,
        seed=0)
    base = tmp_path / 'gtFine/train/aachen/aachen_000000_000019_gtFine_'
    train_ids = np.array(Image.open(f'{base}labelTrainIds.png'))
    ids = np.array(Image.open(f'{base}labelIds.png'))
    # road: trainId 0 <-> labelId 7, sky: 10 <-> 23 (cityscapesscripts)
    assert set(zip(train_ids.ravel().tolist(),
                   ids.ravel().tolist())) <= {(0, 7), (1, 8), (2, 11), (8, 21),
                                              (10, 23), (11, 24), (13, 26)}


@pytest.mark.parametrize('kwargs, match', [
    (dict(fmt='kitti'), 'unknown format'),
    (dict(fmt='cityscapes', num_train=-1), 'num_train'),
    (dict(fmt='ade20k', num_test=2), 'num_test'),
    (dict(fmt='cityscapes', height=8), 'at least 32x32'),
])
def test_bad_generator_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate(out_dir=str(tmp_path), **kwargs)


def test_a_scene_drawer_of_the_wrong_size_is_refused_before_writing(tmp_path):
    with pytest.raises(ValueError, match=r'expected \(128, 256, 3\)'):
        generate(
            'cityscapes',
            str(tmp_path),
            num_train=2,
            num_val=0,
            height=128,
            width=256,
            draw_scene=lambda rng: make_scene(64, 64, rng))
    assert not (tmp_path / 'leftImg8bit').exists()
