"""``--cfg-options`` that shrink a real config to a short CPU run.

They re-root the data, keep images at their generated size (no upscaling to
the benchmark's 2048 px), drop pretrained weights (no network) and shorten
the schedule; everything else is the config as users run it.
"""
import os.path as osp

from mmengine.config import Config

from .conftest import ROOT


def _step_index(pipeline, type_name):
    return next(i for i, t in enumerate(pipeline) if t['type'] == type_name)


def cpu_options(config_path, data_root, image_size, max_iters=2,
                batch_size=2):
    """Options for ``mim train/test``; image_size is the generated (h, w)."""
    cfg = Config.fromfile(osp.join(ROOT, config_path))
    h, w = image_size
    opts = ['model.pretrained=None', 'model.backbone.init_cfg=None',
            f'model.data_preprocessor.size=({h},{w})',
            f'train_cfg.max_iters={max_iters}',
            f'train_cfg.val_interval={max_iters + 1000}',
            f'param_scheduler.0.end={max_iters}',
            'default_hooks.checkpoint.interval=1',
            'default_hooks.logger.interval=1',
            f'train_dataloader.batch_size={batch_size}']
    train = cfg.train_dataloader.dataset.pipeline
    i = _step_index(train, 'RandomResize')
    opts += [f'train_dataloader.dataset.pipeline.{i}.scale=({w},{h})',
             f'train_dataloader.dataset.pipeline.{i}.ratio_range=(1.0,1.25)']
    i = _step_index(train, 'RandomCrop')
    opts.append(f'train_dataloader.dataset.pipeline.{i}.crop_size=({h},{w})')
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{loader}.dataset.data_root={data_root}',
                 f'{loader}.num_workers=0',
                 f'{loader}.persistent_workers=False']
    for loader in ('val_dataloader', 'test_dataloader'):
        i = _step_index(cfg[loader].dataset.pipeline, 'Resize')
        opts.append(f'{loader}.dataset.pipeline.{i}.scale=({w},{h})')
    return opts
