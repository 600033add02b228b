"""``--cfg-options`` that shrink a real config to a short CPU run.

They re-root the data, keep images at their generated size (no upscaling to
the benchmark's 2048 px), drop pretrained weights (no network) and shorten
the schedule; everything else is the config as users run it. Printed for
users by tools/misc/short_run_options.py; used by the tests and by
projects/cue_scenes/tools/ablation_miniature.py.
"""
from typing import List, Optional, Tuple

from mmengine.config import Config


def _step_index(pipeline, type_name):
    return next(i for i, t in enumerate(pipeline) if t['type'] == type_name)


def short_run_options(config_path: str,
                      data_root: str,
                      image_size: Tuple[int, int],
                      max_iters: int = 2,
                      batch_size: int = 2,
                      num_workers: int = 0,
                      cfg_options: Optional[dict] = None) -> List[str]:
    """Options for ``mim train/test``; image_size is the generated (h, w);
    ``cfg_options`` are applied to the config before it is read."""
    cfg = Config.fromfile(config_path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    h, w = image_size
    opts = [
        'model.pretrained=None', 'model.backbone.init_cfg=None',
        f'model.data_preprocessor.size=({h},{w})',
        f'train_cfg.max_iters={max_iters}',
        f'train_cfg.val_interval={max_iters + 1000}',
        f'param_scheduler.0.end={max_iters}',
        f'default_hooks.checkpoint.interval={max(1, max_iters // 2)}',
        f'default_hooks.logger.interval={max(1, min(20, max_iters // 10))}',
        f'train_dataloader.batch_size={batch_size}'
    ]
    train = cfg.train_dataloader.dataset.pipeline
    i = _step_index(train, 'RandomResize')
    opts += [
        f'train_dataloader.dataset.pipeline.{i}.scale=({w},{h})',
        f'train_dataloader.dataset.pipeline.{i}.ratio_range=(1.0,1.25)'
    ]
    i = _step_index(train, 'RandomCrop')
    opts.append(f'train_dataloader.dataset.pipeline.{i}.crop_size=({h},{w})')
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [
            f'{loader}.dataset.data_root={data_root}',
            f'{loader}.num_workers={num_workers}',
            f'{loader}.persistent_workers={num_workers > 0}'
        ]
    for loader in ('val_dataloader', 'test_dataloader'):
        i = _step_index(cfg[loader].dataset.pipeline, 'Resize')
        opts.append(f'{loader}.dataset.pipeline.{i}.scale=({w},{h})')
    return opts
