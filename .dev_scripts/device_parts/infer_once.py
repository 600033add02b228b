"""One MMSegInferencer call with a short run's checkpoint: the label map
has the image's size.

    python infer_once.py CONFIG CHECKPOINT DATA_ROOT HxW
"""
import glob
import sys
import time

import torch
from mmengine.config import Config
from mmseg.apis import MMSegInferencer

import mmseg_ssanet  # noqa: F401 (registers the model)
from mmseg_ssanet.utils.argument_types import cfg_options_dict, image_size
from mmseg_ssanet.utils.short_run import short_run_options

config, weights, data, size = sys.argv[1:]
h, w = image_size(size)
cfg = Config.fromfile(config)
cfg.merge_from_dict(cfg_options_dict(short_run_options(config, data, (h, w))))
device = 'cuda' if torch.cuda.is_available() else 'cpu'
inferencer = MMSegInferencer(model=cfg, weights=weights, device=device)
image = sorted(glob.glob(f'{data}/leftImg8bit/val/*/*.png'))[0]
start = time.perf_counter()
result = inferencer(image)
seconds = time.perf_counter() - start
labels = result['predictions']
assert labels.shape == (h, w), labels.shape
print(f'MMSegInferencer on {device}: {labels.shape}, classes '
      f'{sorted(set(labels.flatten().tolist()))}, {seconds:.2f} s')
