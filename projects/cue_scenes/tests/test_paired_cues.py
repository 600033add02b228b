"""Cue scenes: each target's label is decided by its own distant cue."""
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from mmseg_ssanet.datasets.synthetic import ROLES, generate, label_ids
from projects.cue_scenes.paired_cues import (CUE_CLASSES, CUE_ROLES, CUE_SIZE,
                                             HUE_CUE_ROLES, LABELLED_HUES,
                                             PAIR_HUES, TARGET_SIZE,
                                             generate_cue_scenes,
                                             make_cue_scene)
from tests.conftest import ROOT, stock_dataset

TOOLS = osp.join(ROOT, 'projects', 'cue_scenes', 'tools')


def _scenes(n=20, distance=(64, 112), num_pairs=3, seed=0):
    rng = np.random.default_rng(seed)
    return [
        make_cue_scene(128, 256, rng, num_pairs, distance) for _ in range(n)
    ]


def _centre(top_left, size):
    return np.array(top_left) + size / 2


def test_each_target_is_labelled_by_its_own_cue():
    role = {name: i for i, name in enumerate(ROLES)}
    for scene in _scenes():
        assert len(scene.pairs) >= 2
        # pooling over the image cannot decide: both classes in each image
        assert {p.role for p in scene.pairs} == set(CUE_CLASSES)
        hues = []
        for pair in scene.pairs:
            (ty, tx), (cy, cx) = pair.target, pair.cue
            target = scene.image[ty:ty + TARGET_SIZE, tx:tx + TARGET_SIZE]
            cue = scene.image[cy:cy + CUE_SIZE, cx:cx + CUE_SIZE]
            # the target is one plain hue, whatever its class
            assert (scene.roles[ty:ty + TARGET_SIZE,
                                tx:tx + TARGET_SIZE] == role[pair.role]).all()
            hue = target.reshape(-1, 3).mean(0)
            nearest = int(
                np.argmin([np.abs(hue - h).sum() for h in PAIR_HUES]))
            assert np.abs(hue - PAIR_HUES[nearest]).max() < 6
            hues.append(nearest)
            # the cue's rim has the target's hue, its centre tells the class
            assert np.abs(cue[1].mean(0) - hue).max() < 10
            centre = cue[CUE_SIZE // 2 - 2:CUE_SIZE // 2 + 2,
                         CUE_SIZE // 2 - 2:CUE_SIZE // 2 + 2].mean()
            assert centre > 200 if pair.role == 'car' else centre < 50
            assert (scene.roles[cy:cy + CUE_SIZE, cx:cx +
                                CUE_SIZE] == role[CUE_ROLES[pair.role]]).all()
            # the documented distance, centre to centre
            d = np.hypot(*(_centre(pair.target, TARGET_SIZE) -
                           _centre(pair.cue, CUE_SIZE)))
            assert 64 - 1 <= d <= 112 + 1 and abs(d - pair.distance) <= 1
        assert len(set(hues)) == len(hues)  # pairs told apart by hue
    # the target's look carries no information about its class
    targets = {c: [] for c in CUE_CLASSES}
    for scene in _scenes(60, seed=1):
        for pair in scene.pairs:
            ty, tx = pair.target
            targets[pair.role].append(scene.image[ty:ty + TARGET_SIZE,
                                                  tx:tx + TARGET_SIZE].mean())
    assert abs(np.mean(targets['car']) - np.mean(targets['person'])) < 10


def test_hue_labelled_cues_name_their_hue_and_centre():
    """cue_labels='hue': the cue's own label tells hue and centre; the
    target is still labelled by its cue's centre alone."""
    role = {name: i for i, name in enumerate(ROLES)}
    rng = np.random.default_rng(4)
    seen = set()
    for _ in range(30):
        scene = make_cue_scene(128, 256, rng, 2, cue_labels='hue')
        assert {p.role for p in scene.pairs} == set(CUE_CLASSES)
        hues = []
        for pair in scene.pairs:
            (ty, tx), (cy, cx) = pair.target, pair.cue
            hue = scene.image[ty:ty + TARGET_SIZE,
                              tx:tx + TARGET_SIZE].reshape(-1, 3).mean(0)
            index = int(
                np.argmin([np.abs(hue - h).sum() for h in LABELLED_HUES]))
            assert np.abs(hue - LABELLED_HUES[index]).max() < 6
            hues.append(index)
            cue_role = HUE_CUE_ROLES[index][pair.role]
            assert (scene.roles[cy:cy + CUE_SIZE,
                                cx:cx + CUE_SIZE] == role[cue_role]).all()
            assert (scene.roles[ty:ty + TARGET_SIZE,
                                tx:tx + TARGET_SIZE] == role[pair.role]).all()
            seen.add(cue_role)
        assert sorted(hues) == [0, 1]
    assert seen == {'building', 'vegetation', 'sky', 'sidewalk'}


def test_hue_labelled_pairs_are_recovered_from_the_files(tmp_path):
    from mmseg.datasets import CityscapesDataset

    from projects.cue_scenes.paired_cues import pairs_from_labels
    generate_cue_scenes(
        'cityscapes',
        str(tmp_path),
        num_train=0,
        num_val=2,
        seed=2,
        num_pairs=2,
        cue_labels='hue')
    label = next((tmp_path / 'gtFine/val').rglob('*_labelTrainIds.png'))
    image = str(label).replace('_gtFine_labelTrainIds',
                               '_leftImg8bit').replace('gtFine', 'leftImg8bit',
                                                       1)
    classes = CityscapesDataset.METAINFO['classes']
    labels = np.array(Image.open(label))
    pairs = pairs_from_labels(np.array(Image.open(image)), labels, classes)
    assert len(pairs) == 2 and {p.role for p in pairs} == set(CUE_CLASSES)
    for p in pairs:
        assert 64 - 1 <= p.distance <= 112 + 1


def test_cue_scenes_load_as_stock_cityscapes(tmp_path):
    generate_cue_scenes(
        'cityscapes',
        str(tmp_path),
        num_train=2,
        num_val=2,
        height=128,
        width=256,
        seed=3,
        cue_distance=(48, 80))
    dataset, _ = stock_dataset('cityscapes', str(tmp_path), 'val')
    classes = dataset.metainfo['classes']
    for i in range(len(dataset)):
        gt = dataset[i]['data_samples'].gt_sem_seg.data
        present = {classes[v] for v in gt.unique().tolist()}
        assert present == {'road', 'building', 'vegetation', 'car', 'person'}


def test_cue_generation_is_seeded(tmp_path):
    files = []
    for name, seed in (('a', 5), ('b', 5), ('c', 6)):
        generate_cue_scenes(
            'cityscapes',
            str(tmp_path / name),
            num_train=1,
            num_val=0,
            seed=seed)
        files.append(
            np.array(
                Image.open(tmp_path / name / 'leftImg8bit/train/aachen/'
                           'aachen_000000_000019_leftImg8bit.png')))
    assert (files[0] == files[1]).all() and (files[0] != files[2]).any()


@pytest.mark.parametrize('kwargs, match', [
    (dict(cue_distance=(20, 80)), 'cue distance'),
    (dict(cue_distance=(90, 60)), 'cue distance'),
    (dict(cue_distance=(64, 400)), 'cue distance'),
    (dict(cue_distance='far'), 'cue distance'),
    (dict(num_pairs=0), 'num_pairs'),
    (dict(num_pairs=3, cue_labels='hue'), 'num_pairs'),
    (dict(num_pairs=2, cue_labels='rim'), 'cue_labels'),
])
def test_bad_cue_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_cue_scenes(
            'cityscapes', str(tmp_path), num_train=1, num_val=0, **kwargs)
    assert not (tmp_path / 'leftImg8bit').exists()  # checked before writing


def test_cue_scenes_go_through_the_packages_writer(tmp_path):
    """The package's generate() writes whatever scenes it is given, in
    the benchmark's layout: the study's scenes need no writer of their own.
    """
    generate(
        'ade20k',
        str(tmp_path),
        num_train=1,
        num_val=0,
        seed=1,
        draw_scene=lambda rng: make_cue_scene(128, 256, rng))
    first = make_cue_scene(128, 256, np.random.default_rng(1))
    written = np.array(
        Image.open(tmp_path / 'ADEChallengeData2016/annotations/training/'
                   'ADE_train_00000001.png'))
    assert (written == label_ids('ade20k')[first.roles]).all()


def test_cli_writes_cue_scenes_and_rejects_bad_distance(tmp_path):
    tool = osp.join(TOOLS, 'generate_cue_data.py')
    out = subprocess.run([
        sys.executable, tool, 'cityscapes',
        str(tmp_path / 'ok'), '--num-train', '2', '--num-val', '1',
        '--cue-distance', '48', '96', '--preview',
        str(tmp_path / 'p.png')
    ],
                         capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    assert 'cityscapes train: 2 images' in out.stdout
    assert Image.open(tmp_path / 'p.png').size[0] > 600
    bad = subprocess.run([
        sys.executable, tool, 'cityscapes',
        str(tmp_path / 'bad'), '--cue-distance', '10', '20'
    ],
                         capture_output=True,
                         text=True)
    assert bad.returncode == 2 and 'cue distance' in bad.stderr
    assert not (tmp_path / 'bad').exists()


def test_pairs_are_recovered_from_the_written_files(tmp_path):
    from mmseg.datasets import CityscapesDataset

    from projects.cue_scenes.paired_cues import pairs_from_labels
    generate_cue_scenes(
        'cityscapes', str(tmp_path), num_train=1, num_val=0, seed=4)
    first = make_cue_scene(128, 256, np.random.default_rng(4))  # same draw
    stem = 'train/aachen/aachen_000000_000019_'
    image = np.array(
        Image.open(tmp_path / f'leftImg8bit/{stem}'
                   'leftImg8bit.png'))
    labels = np.array(
        Image.open(tmp_path / f'gtFine/{stem}'
                   'gtFine_labelTrainIds.png'))
    found = pairs_from_labels(image, labels,
                              CityscapesDataset.METAINFO['classes'])

    def key(p):
        return p.target, p.cue, p.role

    assert sorted(map(key, found)) == sorted(map(key, first.pairs))
    assert len(found) >= 2


def test_share_of_cues_within_the_initial_grid():
    from projects.cue_scenes.paired_cues import CuePair, share_within_grid

    def pair(dy, dx):  # cue centre (dy, dx) feature pixels from the target's
        y, x = 64 + 16 * dy + 4, 64 + 16 * dx + 4  # (TARGET - CUE) / 2 = 4
        return CuePair((64, 64), (round(y), round(x)), 'car', 0.)

    pairs = [pair(0, 4), pair(-4, 4), pair(0, 5), pair(3, -2)]
    assert share_within_grid(pairs, (9, 9)) == 0.75
    assert share_within_grid(pairs, (7, 7)) == 0.25
    assert share_within_grid(pairs, (3, 3), dilation=2) == 0.0
    assert share_within_grid(pairs, (9, 9), dilation=2) == 1.0
    with pytest.raises(ValueError, match='no pairs'):
        share_within_grid([], (9, 9))
