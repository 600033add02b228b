"""Clear errors for a missing or misplaced dataset, before training starts.

Stock mmseg lists image files lazily: a wrong ``data_root`` ends in a bare
``FileNotFoundError`` from the file backend, and a folder in the wrong layout
ends in an empty dataset (``num_samples should be a positive integer``) or in a
missing label file deep inside a dataloader worker. The plugin checks the
layout when a dataset lists its files (the ``dataset_layout`` shim,
:mod:`mmseg_ssanet.shims`) and names what it expected to find.
"""
import os
import os.path as osp
from typing import List

# The layout each stock dataset class expects, for the error message.
EXPECTED_LAYOUT = {
    'CityscapesDataset':
    ('<data_root>/leftImg8bit/{train,val,test}/<city>/'
     '*_leftImg8bit.png and <data_root>/gtFine/{train,val}/<city>/'
     '*_gtFine_labelTrainIds.png (run mmseg\'s '
     'tools/dataset_converters/cityscapes.py to make the labelTrainIds)'),
    'ADE20KDataset':
    ('<data_root>/images/{training,validation}/*.jpg and '
     '<data_root>/annotations/{training,validation}/*.png, with '
     'data_root pointing at ADEChallengeData2016'),
    'PascalContextDataset59':
    ('<data_root>/JPEGImages/*.jpg, '
     '<data_root>/SegmentationClassContext/*.png and '
     '<data_root>/ImageSets/SegmentationContext/{train,val}.txt, with '
     'data_root pointing at VOCdevkit/VOC2010'),
}


class DatasetLayoutError(FileNotFoundError):
    """The dataset on disk is missing or not in the layout the class reads."""


def _where(dataset) -> str:
    name = type(dataset).__name__
    layout = EXPECTED_LAYOUT.get(name)
    hint = f' {name} expects {layout}.' if layout else ''
    return (f'{name} (data_root={dataset.data_root!r}, '
            f'data_prefix={dict(dataset.data_prefix)!r}).{hint} '
            f'tools/misc/generate_data.py writes a small dataset in this '
            f'layout.')


def check_before_listing(dataset) -> None:
    """Check what must exist before the dataset lists its files."""
    root = dataset.data_root
    if root and not osp.isdir(root):
        # a relative data_root (the configs' 'data/cityscapes/') is read
        # from the folder the command runs in, not the config's
        resolved = '' if osp.isabs(root) else (
            f' (a relative path: looked for {osp.abspath(root)!r}, from the '
            f'current folder {os.getcwd()!r}; run from the folder that '
            f'holds it, or give an absolute data_root)')
        raise DatasetLayoutError(
            f'data_root {root!r} does not exist{resolved}, for '
            f'{_where(dataset)}')
    img_dir = dataset.data_prefix.get('img_path')
    if img_dir and not osp.isdir(img_dir):
        raise DatasetLayoutError(
            f'image folder {img_dir!r} does not exist, for {_where(dataset)}')
    ann_file = dataset.ann_file
    if ann_file and not osp.isdir(ann_file) and not osp.isfile(ann_file):
        raise DatasetLayoutError(
            f'ann_file {ann_file!r} does not exist, for {_where(dataset)}')


def check_listed(dataset, data_list: List[dict]) -> None:
    """Check the listed samples: some images, and their label files."""
    if not data_list:
        raise DatasetLayoutError(
            f'no images ending in {dataset.img_suffix!r} were found, for '
            f'{_where(dataset)}')
    ann_dir = dataset.data_prefix.get('seg_map_path')
    if not ann_dir:
        return
    missing = [
        d['seg_map_path'] for d in data_list
        if 'seg_map_path' in d and not osp.isfile(d['seg_map_path'])
    ]
    # A test split without labels (Cityscapes test) has no label folder at
    # all; that is fine for format_only runs, so only a partial set is wrong.
    if missing and (len(missing) < len(data_list) or osp.isdir(ann_dir)):
        raise DatasetLayoutError(
            f'{len(missing)} of {len(data_list)} label files are missing, '
            f'e.g. {missing[0]!r}, for {_where(dataset)}')
